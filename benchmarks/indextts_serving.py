"""IndexTTS2 as the server runs it: memory and start-up of a serving process with one voice.

Uses the full-size model folder and 5 s clip that `indextts_bench.py` builds (random weights)
under benchmarks/.work/indextts/full. Each case runs in a fresh process, the way the server
runs: the shared ONNX Runtime thread pool, `IndexTTSEngine.load`, one sentence. The first
process prepares the voice (w2v-BERT and the conformers are loaded, used, released); the next
ones find its conditioning on disk, which is the steady state of a server: what they hold is
what serving costs.

    .venv/bin/python benchmarks/indextts_bench.py            # once, builds the model folder
    .venv/bin/python benchmarks/indextts_serving.py
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import proc_status_mib, run_json_child

ROOT = Path(__file__).resolve().parents[1]
FULL = ROOT / "benchmarks" / ".work" / "indextts" / "full"
TEXT = "The garage door has been open for ten minutes."
# Random weights never emit the stop token: cap the codes near the 3.5 s of the main benchmark.
MAX_MEL_TOKENS = 175


def child(voices: Path, conditioning: Path, int8: bool) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions
    from wyoming_indextts.engines.sessions import use_shared_thread_pool

    use_shared_thread_pool()
    start = time.perf_counter()
    options = IndexTTSOptions(int8=int8, max_mel_tokens=MAX_MEL_TOKENS, verify_model=False)
    engine = IndexTTSEngine.load(FULL / "model", voices, conditioning, options)
    loaded = time.perf_counter() - start
    after_load = proc_status_mib("VmRSS")
    start = time.perf_counter()
    pcm = b"".join(engine.synthesize(TEXT, engine.voices()[0]))
    return {
        "load_s": loaded,
        "rss_after_load_mib": after_load,
        "synth_s": time.perf_counter() - start,
        "audio_s": len(pcm) / 2 / 22050,
        "peak_rss_mib": proc_status_mib("VmHWM"),
    }


def run_case(voices: Path, conditioning: Path, int8: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(voices), str(conditioning), "int8" if int8 else "fp32"]
    return run_json_child(command, "int8" if int8 else "fp32")


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        voices, conditioning, kind = sys.argv[2:5]
        print(json.dumps(child(Path(voices), Path(conditioning), kind == "int8")))
        return 0
    if not (FULL / "model" / "manifest.json").is_file():
        print(f"{FULL / 'model'} is missing: run benchmarks/indextts_bench.py first", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _report import LoadMonitor, command_line, machine_description, timestamp, write_section

    work = Path(tempfile.mkdtemp(prefix="indextts-serving-"))
    try:
        voices = work / "voices"
        voices.mkdir()
        shutil.copy(FULL / "clip-5s.wav", voices / "bench.wav")
        with LoadMonitor() as load:
            rows = [
                ("fp32, voice prepared at start-up", run_case(voices, work / "cond-fp32", False)),
                ("fp32, voice conditioning from disk", run_case(voices, work / "cond-fp32", False)),
                ("int8 GPT + diffusion, voice prepared at start-up", run_case(voices, work / "cond-int8", True)),
                ("int8 GPT + diffusion, voice conditioning from disk", run_case(voices, work / "cond-int8", True)),
            ]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "## IndexTTS2 serving process: memory and start-up (published architecture, random weights)",
        "",
        f"{timestamp()} · {machine_description()}.",
        load.summary(),
        "",
        f"One fresh process per row: shared thread pool, `IndexTTSEngine.load` with one 5 s voice, then one "
        f"sentence ({MAX_MEL_TOKENS} GPT codes, 25 diffusion steps). Target: serving RSS at most 2 GB with one "
        "voice loaded; conditioning costs nothing per request after the first (it is prepared once per clip "
        "and model, and read from disk afterwards).",
        "",
        "| case | load s | RSS after load MiB | sentence s | audio s | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['load_s']:.1f} | {r['rss_after_load_mib']:.0f} | {r['synth_s']:.1f} | "
            f"{r['audio_s']:.2f} | {r['peak_rss_mib']:.0f} |"
        )
    lines += ["", "Command:", "", "```sh", command_line(), "```"]
    write_section("indextts_serving", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
