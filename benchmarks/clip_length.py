"""How the length of a voice's clip costs time in every sentence: s2mel's 25 flow-matching
steps run over the clip's mel frames and the sentence's together (the clip is the in-context
prompt), so a longer clip makes every sentence slower. The GPT, codec and BigVGAN stages do not
depend on the clip's length (IndexTTS-2's speaker conditioning is 32 latents whatever the clip).

Measured on the IndexTTS-2 published-size folder of benchmarks/indextts_bench.py (random
weights; built and exported there when missing), ONNX Runtime fp32: one 3.5 s sentence (302
new mel frames, from a fixed random condition) after clips of 3, 5, 10 and 15 s (15 s is where
the official code cuts a clip), one warm-up and `--runs` timed s2mel runs each.

    .venv/bin/python benchmarks/clip_length.py [--runs 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import LoadMonitor, command_line, machine_description, timestamp, write_section  # noqa: E402

SECTION = "clip_length"
CLIP_SECONDS = (3.0, 5.0, 10.0, 15.0)
REFERENCE_SECONDS = 15.0
SENTENCE_FRAMES = 302
"""3.5 s of audio at 22050 Hz / 256 hop."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import indextts_bench
    import numpy as np

    from tests.indextts.clips import voiced_clip, write_clip
    from wyoming_indextts.engines.indextts.conditioning import AcousticConditioner, load_mel_settings
    from wyoming_indextts.engines.indextts.model import IndexTTSModel
    from wyoming_indextts.engines.indextts.options import IndexTTSOptions
    from wyoming_indextts.engines.indextts.preparation import condition_voice
    from wyoming_indextts.engines.indextts.s2mel import S2Mel

    model_dir = indextts_bench.WORK / "full" / "model"
    indextts_bench.export_model(
        indextts_bench.build_official_files(indextts_bench.FULL_CONFIG, indextts_bench.WORK / "full" / "official", tiny=False), model_dir
    )
    model = IndexTTSModel.open(model_dir, verify=False, threads=args.threads)
    conditioner = AcousticConditioner(model.session, load_mel_settings(model.path))
    s2mel = S2Mel(model.session, mel_frames_per_code=model.speech.mel_frames_per_code)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        voices = {}
        for seconds in CLIP_SECONDS:
            clip = write_clip(Path(tmp) / f"clip{seconds:g}.wav", voiced_clip(seconds, 24000, seed=4), 24000)
            voices[seconds] = condition_voice(model, conditioner, clip, IndexTTSOptions())
    cond = rng.standard_normal((1, SENTENCE_FRAMES, voices[CLIP_SECONDS[0]].prompt_condition.shape[2])).astype(np.float32)
    started = time.perf_counter()
    rows = {}
    with LoadMonitor() as load:
        for seconds, voice in voices.items():
            mu = np.concatenate([voice.prompt_condition, cond], axis=1)
            times = []
            for run in range(1 + args.runs):
                start = time.perf_counter()
                s2mel.sample(mu, voice.ref_mel, voice.style, rng=np.random.default_rng(run))
                if run:
                    times.append(time.perf_counter() - start)
            rows[seconds] = (voice.ref_mel.shape[2], statistics.median(times))
            print(f"clip {seconds:g} s: {rows[seconds][0]} prompt frames, s2mel {rows[seconds][1]:.2f} s", file=sys.stderr)
    reference = rows[REFERENCE_SECONDS][1]
    table = [
        f"| {seconds:g} s | {frames} | {frames + SENTENCE_FRAMES} | {median:.2f} | {reference / median:.2f}× |"
        for seconds, (frames, median) in rows.items()
    ]
    text = "\n".join(
        [
            "## A voice's clip length: s2mel time per sentence (IndexTTS-2 published architecture, random weights)",
            "",
            f"{timestamp()} · {machine_description()} · {args.threads} ONNX Runtime threads · median of {args.runs} runs after a warm-up.",
            load.summary(),
            "",
            f"Work: one 3.5 s sentence ({SENTENCE_FRAMES} new mel frames) after each clip; 25 flow-matching steps, CFG 0.7, fp32. "
            "The GPT, codec and BigVGAN stages do not depend on the clip's length.",
            "",
            f"| clip | clip mel frames | frames per step | s2mel s (median) | vs a {REFERENCE_SECONDS:g} s clip |",
            "|---|---|---|---|---|",
            *table,
            "",
            "Command:",
            "",
            "```sh",
            command_line(),
            "```",
            "",
            f"Measured part {time.perf_counter() - started:.0f} s.",
        ]
    )
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
