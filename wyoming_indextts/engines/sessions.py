"""ONNX Runtime session options, one thread pool for every session of a server, and the
execution provider every session runs on.

Each InferenceSession normally owns a thread pool whose threads sleep between runs. A sentence
runs several sessions one after another (Piper's front and decoder; IndexTTS's GPT, estimator
and vocoder), and each switch wakes a pool that had gone to sleep, a cost measured on Piper sentences
(benchmarks/RESULTS.md, `bench_vs_piper`). Sessions sharing one global pool don't pay it.

The pool is process-wide and ONNX Runtime then refuses sessions with pools of their own, so
only the server turns it on (`use_shared_thread_pool`, before its first session); library users
and tests get ordinary sessions unless they do the same.

The execution provider (`use_provider`: CPU, CUDA, OpenVINO) is chosen once for the process too:
each comes with its own onnxruntime package (onnxruntime-gpu, onnxruntime-openvino), which
replaces the plain one. A provider this onnxruntime lacks, or that fails to start (no driver,
no device), falls back to the CPU with a warning that says what to install.
"""

from __future__ import annotations

import logging
import os
import threading

import onnxruntime

_LOGGER = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
PROVIDERS = {"cpu": CPU, "cuda": "CUDAExecutionProvider", "openvino": "OpenVINOExecutionProvider"}
"""`--provider` value → ONNX Runtime's name for it."""
PROVIDER_PACKAGES = {"cuda": "onnxruntime-gpu (the [cuda] extra)", "openvino": "onnxruntime-openvino (the [openvino] extra)"}

_lock = threading.Lock()
_pool_threads: int | None = None
_providers: list[str] = [CPU]


def use_shared_thread_pool(threads: int = 0) -> int:
    """Size the process-wide pool (0: one thread per core); returns its size. Later calls keep
    the first size: the pool cannot be resized."""
    global _pool_threads
    with _lock:
        if _pool_threads is None:
            _pool_threads = threads or os.cpu_count() or 1
            # One inter-op thread: every graph here runs its nodes in order.
            onnxruntime.set_global_thread_pool_sizes(_pool_threads, 1)
        return _pool_threads


def session_options(threads: int = 0, arena: bool = True) -> onnxruntime.SessionOptions:
    """Options for a new session: on the shared pool when the server set one up (`threads` is
    then moot), else a pool of its own with `threads` threads (0: ONNX Runtime's default).

    `arena=False` hands activation memory back after each run instead of keeping the
    high-water mark for the next one: right for a graph run once per sentence on large
    tensors, wrong for one run hundreds of times on small ones."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = arena
    if _pool_threads is not None:
        options.use_per_session_threads = False
    elif threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def shrinking_run() -> onnxruntime.RunOptions:
    """Run options that hand the CPU arena's free memory back when the run ends. An arena keeps
    the high-water mark of its largest run for good; for a run on large tensors that mark can
    be hundreds of MB the process then holds while idle."""
    options = onnxruntime.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


def providers() -> list[str]:
    """The providers for a new session, in order of preference (the CPU always last, for the
    operators another provider does not implement)."""
    return list(_providers)


def use_provider(name: str) -> str:
    """Run every later session on provider `name` (a key of PROVIDERS); returns the key of the
    provider actually in use, "cpu" when the wanted one is missing or does not start (with a
    warning). The caller reports the result once the server is ready, so that a start-up
    error stays the only line on stderr."""
    global _providers
    wanted = PROVIDERS[name]
    if name != "cpu":
        available = onnxruntime.get_available_providers()
        if wanted not in available:
            _LOGGER.warning(
                "Execution provider %s is not in this onnxruntime %s (it has %s): install %s in place of onnxruntime; running on the CPU",
                name, onnxruntime.__version__, ", ".join(available), PROVIDER_PACKAGES[name],
            )
            name, wanted = "cpu", CPU
        else:
            started = _probe([wanted, CPU])
            if started != wanted:
                _LOGGER.warning("Execution provider %s did not start (no device or driver?); running on the CPU", name)
                name, wanted = "cpu", CPU
    with _lock:
        _providers = [wanted] if wanted == CPU else [wanted, CPU]
    return name


def _probe(wanted: list[str]) -> str:
    """The provider a one-node session really got: ONNX Runtime falls back to the next
    provider, with only a log line of its own, when one fails to start."""
    import onnx  # only for this probe: importing it costs serving start-up time and memory

    tensor = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    result = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "probe", [tensor], [result])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(), session_options(), providers=wanted)
    except Exception as err:  # noqa: BLE001 - each provider fails in its own way
        _LOGGER.warning("Execution provider %s failed to start: %s", wanted[0], err)
        return CPU
    return session.get_providers()[0]
