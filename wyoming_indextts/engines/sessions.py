"""ONNX Runtime session options, and one thread pool for every session of a server.

Each InferenceSession normally owns a thread pool whose threads sleep between runs. A sentence
runs several sessions one after another (Piper's front and decoder; IndexTTS's GPT, estimator
and vocoder), and each switch wakes a pool that had gone to sleep: measured at 20 % of a Piper
sentence on 2 cores. Sessions sharing one global pool don't pay it (and even the whole Piper
graph ran 15 % faster on it).

The pool is process-wide and ONNX Runtime then refuses sessions with pools of their own, so
only the server turns it on (`use_shared_thread_pool`, before its first session); library users
and tests get ordinary sessions unless they do the same.
"""

from __future__ import annotations

import os
import threading

import onnxruntime

_lock = threading.Lock()
_pool_threads: int | None = None


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
