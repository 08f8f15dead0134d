"""`wyoming-indextts check`: how much each fast path changes YOUR voice, as numbers.

Renders a handful of sentences in the voice of one clip with the fp32 model (the reference)
and with each fast path (int8 graphs, fewer diffusion steps, speculative decoding), then
prints per path: the speaker similarity to the fp32 render (cosine of CAMPPlus embeddings),
the speaker similarity to the clip itself, the mel distance to the fp32 render (DTW-aligned
mean |log-mel difference|) and the render time. With sampling (the default decoding), two
fp32 renders with different seeds already differ: the "fp32, another seed" row is that
floor, so a fast path whose numbers match it changes no more than chance does.

    wyoming-indextts check --indextts-model-dir MODEL --voice me.wav
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

import numpy as np

from .audio import pcm_to_float
from .engines.base import EngineError
from .engines.indextts import IndexTTSEngine, IndexTTSOptions, ModelError
from .engines.indextts.conditioning import AcousticConditioner
from .engines.indextts.format import GPT_INT8_GRAPH, S2MEL_ESTIMATOR_INT8_GRAPH, graph_file
from .engines.indextts.quality import cosine, mel_distance, speaker_embedding
from .engines.indextts.voice import SPEAKER_RATE, librosa_resample, read_clip

DEFAULT_TEXTS = (
    "The washing machine has finished its cycle.",
    "Good morning! It is seven o'clock and the sun is out.",
    "客厅的灯已经打开了。",
    "请记得明天早上八点开会。",
)


class CheckParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> CheckParser:
    parser = CheckParser(
        prog="wyoming-indextts check",
        description="Render sentences in your voice with fp32 and each fast path; print how far each is from fp32.",
    )
    parser.add_argument("--indextts-model-dir", type=Path, required=True, help="model folder written by `wyoming-indextts export`")
    parser.add_argument("--voice", type=Path, required=True, help="the voice clip (WAV) to check with")
    parser.add_argument("--text", action="append", default=[], help="a sentence to render (repeat; default: 2 English, 2 Mandarin)")
    parser.add_argument("--fast-diffusion-steps", type=int, default=10, help="diffusion steps of the 'fewer steps' path (default: %(default)s; fp32 uses 25)")
    parser.add_argument("--speculative", type=int, default=4, metavar="K", help="draft codes per pass of the speculative path (default: %(default)s)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling (no seed noise: exact paths give distance 0)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every render (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads per session (0: its default)")
    return parser


@dataclass
class PathResult:
    name: str
    wavs: list[np.ndarray]
    seconds: float
    similarity_to_reference: list[float] | None = None
    similarity_to_clip: list[float] | None = None
    mel_distance: list[float] | None = None


def fast_paths(reference: IndexTTSOptions, args: argparse.Namespace, has_int8: bool) -> list[tuple[str, IndexTTSOptions]]:
    """(name, options) of every path to compare; the int8 ones only when the folder has them."""
    paths = []
    if reference.do_sample:
        paths.append(("fp32, another seed", replace(reference, seed=reference.seed + 1)))
    if has_int8:
        paths.append(("int8 GPT + diffusion", replace(reference, int8=True)))
    paths.append((f"{args.fast_diffusion_steps} diffusion steps", replace(reference, diffusion_steps=args.fast_diffusion_steps)))
    if has_int8:
        paths.append((f"speculative k={args.speculative}", replace(reference, speculative=args.speculative)))
    return paths


def render(model_dir: Path, voices: Path, conditioning: Path, options: IndexTTSOptions, texts: Sequence[str]) -> tuple[list[np.ndarray], float]:
    engine = IndexTTSEngine.load(model_dir, voices, conditioning, options)
    try:
        voice = engine.voices()[0]
        start = time.perf_counter()
        wavs = [pcm_to_float(b"".join(engine.synthesize(text, voice))) for text in texts]
        return wavs, time.perf_counter() - start
    finally:
        engine.close()


def compare(results: list[PathResult], clip_22k: np.ndarray, model_dir: Path, threads: int) -> None:
    """Fill in every path's similarities and distances to the reference (results[0])."""
    conditioner = AcousticConditioner.from_dir(model_dir, threads)
    try:
        clip = speaker_embedding(conditioner, clip_22k)
        reference = [speaker_embedding(conditioner, wav) for wav in results[0].wavs]
        for result in results:
            embeddings = reference if result is results[0] else [speaker_embedding(conditioner, w) for w in result.wavs]
            result.similarity_to_reference = [cosine(a, b) for a, b in zip(embeddings, reference)]
            result.similarity_to_clip = [cosine(e, clip) for e in embeddings]
            result.mel_distance = [mel_distance(a, b) for a, b in zip(result.wavs, results[0].wavs)]
    finally:
        conditioner.close()


def table(results: list[PathResult], texts: Sequence[str]) -> str:
    lines = [
        "| path | speaker similarity to fp32 (mean / min) | speaker similarity to the clip (mean) | mel distance to fp32 (mean / max) | render s |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {np.mean(r.similarity_to_reference):.4f} / {np.min(r.similarity_to_reference):.4f} "
            f"| {np.mean(r.similarity_to_clip):.4f} | {np.mean(r.mel_distance):.4f} / {np.max(r.mel_distance):.4f} "
            f"| {r.seconds:.1f} |"
        )
    lines.append(f"\n{len(texts)} sentences; audio {sum(len(w) for w in results[0].wavs) / SPEAKER_RATE:.1f} s per path.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    texts = args.text or list(DEFAULT_TEXTS)
    if not args.voice.is_file():
        parser.error(f"--voice {args.voice} is not a file")
    if args.fast_diffusion_steps < 1 or args.speculative < 1:
        parser.error("--fast-diffusion-steps and --speculative must be at least 1")
    try:
        samples, rate = read_clip(args.voice)
    except Exception as err:  # noqa: BLE001 - any unreadable clip is one line
        parser.error(f"--voice {args.voice}: unreadable ({err})")
    reference = IndexTTSOptions(do_sample=not args.greedy, seed=args.seed, threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="wyoming-indextts-check-") as tmp:
        voices = Path(tmp) / "voices"
        voices.mkdir()
        shutil.copyfile(args.voice, voices / "check.wav")
        conditioning = Path(tmp) / "conditioning"  # one preparation of the voice, shared by every path
        try:
            wavs, seconds = render(args.indextts_model_dir, voices, conditioning, reference, texts)
            results = [PathResult("fp32 (reference)", wavs, seconds)]
            has_int8 = all((args.indextts_model_dir / graph_file(g)).is_file() for g in (GPT_INT8_GRAPH, S2MEL_ESTIMATOR_INT8_GRAPH))
            for name, options in fast_paths(reference, args, has_int8):
                print(f"rendering: {name} …", file=sys.stderr)
                results.append(PathResult(name, *render(args.indextts_model_dir, voices, conditioning, options, texts)))
            if not has_int8:
                print("no int8 graphs in the model folder (export with --int8): int8 and speculative not checked", file=sys.stderr)
        except (ModelError, EngineError) as err:
            parser.error(str(err))
        compare(results, librosa_resample(samples, rate, SPEAKER_RATE), args.indextts_model_dir, args.threads)
    print(table(results, texts))
    return 0
