"""IndexTTS2 GPT stage at the published size (random weights): fp32, int8, speculative, batched.

Builds the official UnifiedVoice from shared/indextts2/config.yaml with random weights, exports
only its GPT core (fp32 and int8) with the project's exporter, then, in a fresh process
without torch (so its RSS is the runtime's), decodes one prompt (34 conditioning positions +
20 text tokens) with a forced number of codes and reports the time per code:

* fp32 and int8, one sentence, greedy;
* speculative decoding (int8 drafts k codes, fp32 verifies them in one pass), greedy (its
  codes are compared with fp32's) and sampling (infer_v2's defaults), with the acceptance
  rate: with RANDOM weights the int8 and fp32 models agree differently from trained ones,
  so the acceptance rate and the speed-up are not what a real checkpoint gives;
* batched fp32 decoding of 1, 2 and 4 sentences (time per step and per code).

    .venv/bin/python benchmarks/indextts_gpt_decoding.py --tokens 24

The export is cached in benchmarks/.work/indextts_gpt/ (again when the exporter changes).
Writes its section of benchmarks/RESULTS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import proc_status_mib  # noqa: E402

FULL_CONFIG = ROOT.parent / "shared" / "indextts2" / "config.yaml"
WORK = ROOT / "benchmarks" / ".work" / "indextts_gpt"
SECTION = "indextts_gpt_decoding"
TEXT_TOKENS = 20


def export_gpt(config: Path, out: Path) -> Path:
    """fp32 + int8 GPT core, embedding tables and config, exported once per exporter version."""
    sources = [ROOT / "wyoming_indextts" / "export" / name for name in ("gpt.py", "int8.py")]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources) + config.read_bytes()).hexdigest()
    stamp = out / "exporter-sha256"
    if stamp.is_file() and stamp.read_text() == digest:
        return out
    import torch
    from omegaconf import OmegaConf

    from wyoming_indextts.export import gpt as gpt_export

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = OmegaConf.load(config)
    model = gpt_export.build_unified_voice(cfg.gpt).eval()
    model.post_init_gpt2_config(use_deepspeed=False, kv_cache=True, half=False)
    gpt_export.export_core(model, out)
    np_arrays = gpt_export.runtime_arrays(model)
    gpt_export.write_json(out / "gpt.json", gpt_export.runtime_config(cfg.gpt, model))
    del model
    gc.collect()
    import numpy as np

    for name, array in np_arrays.items():
        np.save(out / f"{name}.npy", array, allow_pickle=False)
    gpt_export.quantize_core(out)
    stamp.write_text(digest)
    return out


# -- the measuring process (no torch) -----------------------------------------------------------------


def _rss_mib() -> dict[str, float]:
    return {key: proc_status_mib(key) for key in ("VmRSS", "VmHWM")}


class _Clock:
    """Wall and process CPU seconds (all threads) of a block: on a machine shared with other
    work the CPU seconds the process spent are a steadier measure of its cost than the wall
    clock, which also counts the time others held the cores."""

    def __enter__(self) -> "_Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def measure(folder: Path, tokens: int, k: int, threads: int, repeats: int) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort

    from wyoming_indextts.engines.indextts.batched import generate_batch
    from wyoming_indextts.engines.indextts.gpt import GPTConfig, GPTRuntime
    from wyoming_indextts.engines.indextts.sampling import Sampler, SamplingOptions
    from wyoming_indextts.engines.indextts.speculative import SpeculativeDecoder, SpeculativeStats

    class PrefilledOnce(GPTRuntime):
        """Each prompt prefilled once, so that every timed row counts decode steps only."""

        def __init__(self, session: Any, arrays: dict[str, np.ndarray], config: GPTConfig) -> None:
            super().__init__(session, arrays, config)
            self._prefills: dict[bytes, Any] = {}

        def start(self, prefix, text_ids):
            key = np.asarray(prefix).tobytes() + np.asarray(text_ids, dtype=np.int64).tobytes()
            if key not in self._prefills:
                self._prefills[key] = super().start(prefix, text_ids)
            logits, past, seen = self._prefills[key]
            return logits, dict(past), list(seen)

    before = _rss_mib()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    config = GPTConfig.from_mapping(json.loads((folder / "gpt.json").read_text()))
    arrays = {p.stem: np.load(p) for p in folder.glob("*.npy")}

    def session(name: str) -> Any:
        return ort.InferenceSession(str(folder / name), options, providers=["CPUExecutionProvider"])

    fp32 = PrefilledOnce(session("gpt.onnx"), arrays, config)
    int8 = PrefilledOnce(session("gpt_int8.onnx"), arrays, config)
    loaded = _rss_mib()

    rng = np.random.default_rng(0)
    prefixes = [
        fp32.conditioning_prefix(
            rng.standard_normal((1, 32, config.model_dim)).astype(np.float32),
            (rng.standard_normal((1, config.model_dim)) * 0.1).astype(np.float32),
        )
        for _ in range(4)
    ]
    texts = [rng.integers(2, 250, TEXT_TOKENS).tolist() for _ in range(4)]
    greedy = SamplingOptions(do_sample=False)
    prefill: dict[str, float] = {}
    for name, runtime in (("fp32", fp32), ("int8", int8)):
        for prefix, text in zip(prefixes, texts):
            with _Clock() as clock:
                runtime.start(prefix, text)
            prefill.setdefault(name, clock.wall)
        runtime.generate(prefixes[0], texts[0], Sampler(greedy), 3, 3)  # warm-up: first steps allocate

    def single(runtime: GPTRuntime):
        return lambda: (runtime.generate(prefixes[0], texts[0], Sampler(greedy), tokens, tokens).tolist(), None)

    def speculative(sampling: SamplingOptions):
        def run():
            stats = SpeculativeStats()
            decoder = SpeculativeDecoder(fp32, int8, k)
            return decoder.generate(prefixes[0], texts[0], Sampler(sampling), tokens, tokens, stats).tolist(), stats

        return run

    def batch(size: int):
        samplers = lambda: [Sampler(greedy) for _ in range(size)]  # noqa: E731
        return lambda: ([c.tolist() for c in generate_batch(fp32, prefixes[:size], texts[:size], samplers(), tokens, tokens)], None)

    cases = {
        "fp32": (single(fp32), 1),
        "int8": (single(int8), 1),
        "speculative_greedy": (speculative(greedy), 1),
        "speculative_sampling": (speculative(SamplingOptions(seed=1)), 1),
        "batch_1": (batch(1), 1),
        "batch_2": (batch(2), 2),
        "batch_4": (batch(4), 4),
    }
    rows: dict[str, dict[str, Any]] = {name: {"wall": [], "cpu": []} for name in cases}
    outputs: dict[str, Any] = {}
    for _ in range(repeats):  # rows interleaved, so that a change of load hits them alike
        for name, (run, _) in cases.items():
            with _Clock() as clock:
                outputs[name] = run()
            rows[name]["wall"].append(clock.wall)
            rows[name]["cpu"].append(clock.cpu)
    steps = tokens - 1  # the first code comes from the prefill's logits
    for name, (_, size) in cases.items():
        row = rows[name]
        row["step_wall_s"] = min(row["wall"]) / steps
        row["step_cpu_s"] = min(row["cpu"]) / steps
        row["code_wall_s"] = row["step_wall_s"] / size
        row["code_cpu_s"] = row["step_cpu_s"] / size
        stats = outputs[name][1]
        if stats is not None:
            row.update(acceptance=stats.acceptance_rate, drafted=stats.drafted, accepted=stats.accepted, passes=stats.verify_passes)
    fp32_codes = outputs["fp32"][0]
    return {
        "rss_before_mib": before,
        "rss_loaded_mib": loaded,
        "rss_end_mib": _rss_mib(),
        "prefill_s": prefill,
        "rows": rows,
        "speculative_greedy_identical": outputs["speculative_greedy"][0] == fp32_codes,
        "int8_identical_leading": next((i for i, (a, b) in enumerate(zip(outputs["int8"][0], fp32_codes)) if a != b), tokens),
        "batch_rows_identical": [outputs[f"batch_{n}"][0][0] == fp32_codes for n in (1, 2, 4)],
    }


# -- report -------------------------------------------------------------------------------------------


def report(results: dict[str, Any], args: argparse.Namespace, load_summary: str, machine: str, when: str, seconds: float) -> str:
    rows = results["rows"]
    base = rows["fp32"]
    lines = [
        "## IndexTTS2 GPT stage: fp32, int8, speculative, batched (published architecture, random weights)",
        "",
        f"{when} · {machine} · {args.threads} ONNX Runtime threads.  ",
        load_summary,
        "",
        f"Work: one prompt of 34 conditioning positions + {TEXT_TOKENS} text tokens, prefilled once per graph "
        f"(not timed: fp32 {results['prefill_s']['fp32']:.2f} s, int8 {results['prefill_s']['int8']:.2f} s wall), "
        f"then {args.tokens} codes forced (min = max new tokens), greedy unless said; rows interleaved, "
        f"{args.repeats} runs each, the fastest counted. **CPU s** = CPU seconds the process spent (both threads) "
        "per code: on this shared machine it is the steadier measure; **wall s** also counts the time other work "
        "held the cores. Batch rows: a step decodes one code of every sentence.",
        "",
        "| decoding | CPU s per code | wall s per code | vs fp32 (CPU) | vs fp32 (wall) | notes |",
        "|---|---|---|---|---|---|",
    ]

    def row(label: str, data: dict[str, Any], notes: str) -> str:
        return (
            f"| {label} | {data['code_cpu_s']:.3f} | {data['code_wall_s']:.3f} | {base['code_cpu_s'] / data['code_cpu_s']:.2f}× "
            f"| {base['code_wall_s'] / data['code_wall_s']:.2f}× | {notes} |"
        )

    lines.append(row("fp32", base, "reference"))
    lines.append(row("int8", rows["int8"], f"not exact: the first {results['int8_identical_leading']} codes equal fp32's"))
    for mode in ("greedy", "sampling"):
        data = rows[f"speculative_{mode}"]
        same = (
            f"codes identical to fp32: {'yes' if results['speculative_greedy_identical'] else '**no**'}"
            if mode == "greedy"
            else "infer_v2's sampling defaults; the fp32 distribution"
        )
        lines.append(
            row(
                f"speculative k={args.k}, {mode}",
                data,
                f"{same}; acceptance {data['acceptance']:.0%} ({data['accepted']}/{data['drafted']} drafts), "
                f"{data['passes']} fp32 passes for {args.tokens} codes",
            )
        )
    for index, size in enumerate((1, 2, 4)):
        data = rows[f"batch_{size}"]
        same = "yes" if results["batch_rows_identical"][index] else "**no**"
        lines.append(
            row(
                f"fp32 batch {size}",
                data,
                f"{data['step_cpu_s']:.3f} CPU s / {data['step_wall_s']:.3f} wall s per step; "
                f"sentence 1's codes identical to fp32 alone: {same}",
            )
        )
    lines += [
        "",
        f"Memory of the measuring process (numpy + ONNX Runtime, no torch): RSS {results['rss_before_mib']['VmRSS']:.0f} MiB "
        f"before loading, {results['rss_loaded_mib']['VmRSS']:.0f} MiB with both GPT graphs (fp32 + int8) loaded, "
        f"peak {results['rss_end_mib']['VmHWM']:.0f} MiB after all rows (batch 4 holds four KV caches).",
        "",
        "**The acceptance rates are not representative**: the weights are random, so how often the int8 graph "
        "agrees with fp32 says nothing about a trained checkpoint (whose distributions are far more peaked); the "
        "speculative speed-up on real weights is unmeasured. Greedy speculative and batched codes are exact by "
        "construction (the fp32 graph decides every code), equal to plain fp32 decoding up to floating-point "
        "summation order: checked above and in tests/indextts/test_gpt_fast_decoding.py.",
        "",
        "Command:",
        "",
        "```sh",
        f".venv/bin/python benchmarks/indextts_gpt_decoding.py --tokens {args.tokens} --k {args.k} "
        f"--threads {args.threads} --repeats {args.repeats}",
        "```",
        "",
        f"Whole run {seconds:.0f} s (export cached in `benchmarks/.work/indextts_gpt/`).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--k", type=int, default=4, help="draft codes per fp32 pass")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each row, interleaved; the fastest counts")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.tokens, args.k, args.threads, args.repeats)))
        return 0

    from _report import LoadMonitor, machine_description, timestamp, write_section

    began = time.perf_counter()
    folder = export_gpt(FULL_CONFIG, WORK)
    machine, when = machine_description(), timestamp()
    with LoadMonitor() as load:
        command = [sys.executable, __file__, "--measure", str(folder), "--tokens", str(args.tokens), "--k", str(args.k), "--threads", str(args.threads), "--repeats", str(args.repeats)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    results = json.loads(done.stdout.strip().splitlines()[-1])
    markdown = report(results, args, load.summary(), machine, when, time.perf_counter() - began)
    print(markdown)
    if not args.no_write:
        write_section(SECTION, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
