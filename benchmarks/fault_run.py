"""Fault run: the real server with a primary engine broken on purpose, the bundled Piper voice as
the last resort, and a real Wyoming client over loopback TCP.

    .venv/bin/python benchmarks/fault_run.py [--requests 20] [--deadline 1.0]

The server is assembled in-process from the same pieces and the same command-line parsing as
`python -m wyoming_indextts --deadline 1.0` (default cache in a fresh folder, default breaker,
late renders). The primary, "indextts" voice "clone-en", speaks with the bundled Piper voice when
it works, so every answer is real speech. Phases, each on a fresh server:

- A: the primary hangs on every request, breaker out of the way, so each request meets the deadline;
- A': the same with the default breaker (3 failures, 30 s cool-down), as a user would run it;
- B: the primary fails (raises) on every other request, default breaker.

The fallback's own time to first audio is measured first, directly: the same texts, the same
client, a server with the bundled voice alone. Target: no silent response, exactly one
audio-start and one audio-stop per response, and first audio within the deadline plus the
fallback's own first-audio time for that text. Results go into RESULTS.md (`fault_run`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.tts import Synthesize, SynthesizeVoice

from _common import add_texts_argument, ms, text_lines
from _report import LoadMonitor, command_line, machine_description, timestamp, write_section
from wyoming_indextts.__main__ import parse_args
from wyoming_indextts.engines.base import INDEXTTS, PIPER, Engine, EngineError, Voice
from wyoming_indextts.engines.piper import BUNDLED_VOICE, PiperEngine
from wyoming_indextts.service import build_service
from wyoming_indextts.synthesizer import Synthesizer

HERE = Path(__file__).resolve().parent
TEXT_FILES = ("announcements_en.txt", "replies_en.txt")  # the clone is English, like its fallback
LOGS = HERE / ".work" / "logs"
SECTION = "fault_run"
PRIMARY_VOICE = "clone-en"
HANG_LIMIT = 300.0  # a hung render gives up by itself after this, so no thread outlives the run
REQUEST_TIMEOUT = 90.0
DRAIN = 0.3  # seconds of listening after audio-stop for events that should not come
FALLBACK_REPEATS = 3


class FaultyPrimary:
    """The "indextts" engine with one voice that speaks through the bundled Piper voice, and
    that can be told to hang or to fail before producing any audio."""

    name = INDEXTTS

    def __init__(self, piper: PiperEngine) -> None:
        self.piper = piper
        self.piper_voice = piper.voices()[0]
        self.voice = replace(self.piper_voice, name=PRIMARY_VOICE, engine=self.name)
        self.hanging = False
        self.failing = False
        self.calls = 0
        self.release = threading.Event()

    def voices(self) -> Sequence[Voice]:
        return [self.voice]

    def voice_for_language(self, language: str) -> Voice | None:
        return None

    def synthesize(self, text: str, voice: Voice, *, opening: bool = True) -> Iterator[bytes]:
        self.calls += 1
        if self.hanging:
            self.release.wait(HANG_LIMIT)
            # Rendering now would put dozens of abandoned renders on the CPU during the next phase.
            raise EngineError("hung render released at the end of its phase")
        if self.failing:
            raise EngineError("failing on purpose (fault run)")
        yield from self.piper.synthesize(text, self.piper_voice)

    def close(self) -> None:
        self.release.set()


@dataclass
class Response:
    """What one request got back, with arrival times relative to sending it."""

    text: str
    first_audio: float | None = None
    end: float | None = None
    audio_seconds: float = 0.0
    audio_starts: int = 0
    audio_stops: int = 0
    errors: list[str] = field(default_factory=list)
    stall: float = 0.0
    """Longest time a player that started at the first chunk would have had nothing to play."""
    timed_out: bool = False
    primary_tried: bool = False

    def record(self, event_type: str, data: dict, payload: bytes | None, at: float) -> None:
        if AudioStart.is_type(event_type):
            self.audio_starts += 1
        elif AudioChunk.is_type(event_type) and payload:
            if self.first_audio is None:
                self.first_audio = at
            self.stall = max(self.stall, at - (self.first_audio + self.audio_seconds))
            self.audio_seconds += len(payload) / (data["rate"] * data["width"] * data["channels"])
        elif AudioStop.is_type(event_type):
            self.audio_stops += 1
            self.end = self.end or at
        elif Error.is_type(event_type):
            self.errors.append(str(data.get("text", "")))

    @property
    def silent(self) -> bool:
        return self.audio_seconds == 0

    @property
    def framed(self) -> bool:
        return self.audio_starts == 1 and self.audio_stops == 1


async def ask(port: int, text: str, voice: str) -> Response:
    """One non-streaming request on its own connection, as Home Assistant sends it."""
    response = Response(text)
    async with AsyncTcpClient("127.0.0.1", port) as client:
        sent = time.perf_counter()
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                while (event := await client.read_event()) is not None:
                    response.record(event.type, event.data, event.payload, time.perf_counter() - sent)
                    if AudioStop.is_type(event.type):
                        break
        except TimeoutError:
            response.timed_out = True
            return response
        # A second audio-start or audio-stop would come after the first stop: listen a moment.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN):
                while (event := await client.read_event()) is not None:
                    response.record(event.type, event.data, event.payload, time.perf_counter() - sent)
    return response


@contextlib.asynccontextmanager
async def serve(cli: list[str], engines: dict[str, Engine]) -> AsyncIterator[tuple[int, Synthesizer]]:
    """The server `python -m wyoming_indextts CLI...` would run, on a free loopback port, with
    these engines instead of the ones it would load."""
    service = build_service(parse_args(cli, environ={}), engines)
    server = await service.listen()
    try:
        yield server.bound_port, service.synthesizer
    finally:
        await server.stop()


# --- phases ---------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    description: str
    extra_cli: list[str]
    hang: bool = False
    fail_every_other: bool = False
    responses: list[Response] = field(default_factory=list)
    primary_calls: int = 0
    late_renders_left: int = 0
    breaker: str = ""
    cli: list[str] = field(default_factory=list)


async def measure_fallback(piper: PiperEngine, texts: list[str], deadline: float) -> dict[str, list[float]]:
    """Each text's first-audio times from a server with the bundled voice alone. Like the phases it
    has the default cache, fresh for every round, so every request pays a cache miss and renders."""
    times: dict[str, list[float]] = {}
    for _ in range(FALLBACK_REPEATS):
        with tempfile.TemporaryDirectory(prefix="fault-run-fallback-") as data_dir:
            cli = ["--deadline", f"{deadline:g}", "--data-dir", data_dir]
            async with serve(cli, {PIPER: piper}) as (port, _):
                await ask(port, "Warming up.", BUNDLED_VOICE)  # a fresh server's first render is slow
                for text in texts:
                    response = await ask(port, text, BUNDLED_VOICE)
                    if response.first_audio is None:
                        raise RuntimeError(f"the bundled voice alone gave no audio for {text!r}")
                    times.setdefault(text, []).append(response.first_audio)
    return times


async def run_phase(phase: Phase, piper: PiperEngine, texts: list[str], deadline: float) -> None:
    primary = FaultyPrimary(piper)
    engines: dict[str, Engine] = {INDEXTTS: primary, PIPER: piper}
    with tempfile.TemporaryDirectory(prefix="fault-run-") as data_dir:
        phase.cli = ["--voice", PRIMARY_VOICE, "--deadline", f"{deadline:g}", *phase.extra_cli]
        async with serve([*phase.cli, "--data-dir", data_dir], engines) as (port, synthesizer):
            for index, text in enumerate(texts):
                primary.hanging = phase.hang
                primary.failing = phase.fail_every_other and index % 2 == 0
                calls = primary.calls
                response = await ask(port, text, PRIMARY_VOICE)
                response.primary_tried = primary.calls > calls
                phase.responses.append(response)
            phase.primary_calls = primary.calls
            phase.late_renders_left = synthesizer.late_render_count()
            phase.breaker = synthesizer.breakers["indextts"].state.value
            # Let the hung renders go (they fail) and end before their cache folder disappears.
            primary.close()
            give_up = time.monotonic() + 60
            while synthesizer.late_render_count() and time.monotonic() < give_up:
                await asyncio.sleep(0.1)


# --- report ---------------------------------------------------------------------------------


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def phase_rows(phase: Phase, fallback: dict[str, list[float]], deadline: float) -> tuple[str, bool]:
    responses = phase.responses
    firsts = [r.first_audio for r in responses if r.first_audio is not None]
    silent = sum(r.silent for r in responses)
    unframed = sum(not r.framed for r in responses)
    excess = [r.first_audio - (deadline + max(fallback[r.text])) for r in responses if r.first_audio is not None]
    within = sum(e <= 0 for e in excess)
    # What failing over costs beyond the fallback's own typical first audio.
    overhead = [r.first_audio - statistics.median(fallback[r.text]) for r in responses if r.first_audio is not None]
    held = silent == 0 and unframed == 0 and within == len(responses)
    row = (
        f"| {phase.name} | {len(responses)} | {silent} | {unframed} | {sum(bool(r.errors) for r in responses)} "
        f"| {sum(r.primary_tried for r in responses)} ({phase.primary_calls} sentences) "
        f"| {ms(statistics.fmean(firsts)) if firsts else 'n/a'} / {ms(_p95(firsts)) if firsts else 'n/a'} / {ms(max(firsts, default=None))} "
        f"| {within}/{len(responses)}, worst {ms(max(excess, default=None))} "
        f"| {ms(statistics.median(overhead)) if overhead else 'n/a'} / {ms(max(overhead, default=None))} "
        f"| {ms(max((r.stall for r in responses), default=None))} "
        f"| {phase.late_renders_left}, breaker {phase.breaker} | {'yes' if held else '**no**'} |"
    )
    return row, held


def request_rows(phase: Phase, fallback: dict[str, list[float]]) -> list[str]:
    rows = []
    for index, r in enumerate(phase.responses, 1):
        rows.append(
            f"| {phase.name} | {index} | {'yes' if r.primary_tried else 'no'} | {ms(r.first_audio)} "
            f"| {ms(max(fallback[r.text]))} | {ms(r.end)} | {r.audio_seconds:.2f} | {ms(r.stall)} "
            f"| {r.audio_starts}/{r.audio_stops} | {len(r.errors)} |"
        )
    return rows


def render_section(
    phases: list[Phase], fallback: dict[str, list[float]], deadline: float, machine: str, load: LoadMonitor, started: str
) -> str:
    all_fallback = [t for times in fallback.values() for t in times]
    rows = [phase_rows(phase, fallback, deadline) for phase in phases]
    held_all = all(held for _, held in rows)
    busy = (
        "\n> **Noisy numbers:** other work kept the load above the core count while this ran; the counts are "
        "solid, the milliseconds are not.\n"
        if load.busy()
        else ""
    )
    lines = [
        "## Fault run: broken primary, bundled voice as last resort",
        "",
        f"Run {started}. Machine: {machine}.  ",
        f"{load.summary()}.",
        busy,
        f"Each phase: a fresh in-process server built like `python -m wyoming_indextts --voice {PRIMARY_VOICE} "
        f"--deadline {deadline:g}` (default cache in a fresh folder, late renders 2), primary `indextts` voice "
        f"`{PRIMARY_VOICE}` speaking through the bundled Piper voice when healthy, fallback the bundled "
        f"`{BUNDLED_VOICE}`. {len(phases[0].responses)} non-streaming requests per phase, one at a time, each on "
        f"its own loopback connection; texts: the English lines of `shared/texts/` "
        f"({', '.join(TEXT_FILES)}), each prefixed `Request N:` so the fallback's cache never answers a first "
        "sentence.",
        "",
        f"Fallback's own first audio (same texts and client, a server with the bundled voice alone and a "
        f"fresh default cache, {FALLBACK_REPEATS} runs per text): mean {ms(statistics.fmean(all_fallback))} ms, "
        f"p95 {ms(_p95(all_fallback))} ms, max {ms(max(all_fallback))} ms. A request's bound is the deadline plus "
        "the slowest of its text's fallback runs.",
        "",
        "Phases:",
        *(f"- **{p.name}**: {p.description} (`{shlex.join(p.cli)}`)" for p in phases),
        "",
        "### Results",
        "",
        "| phase | requests | silent | ≠1 start/stop | with error events | primary tried (its sentences) "
        "| first audio ms mean / p95 / max | within deadline + fallback TTFA, worst excess ms "
        "| over fallback's median TTFA ms: median / max | worst stall ms | late renders left, breaker | held |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(row for row, _ in rows),
        "",
        f"Target (zero silent responses, exactly one audio-start/audio-stop each, first audio within "
        f"{deadline:g} s + the fallback's own first audio): {'held' if held_all else '**not held**'}.",
        "",
        "*Stall*: how long a player that started with the first chunk would have run dry before the "
        "response's audio was complete (gaps between sentences).",
        "",
        "<details><summary>Per request</summary>",
        "",
        "| phase | # | primary tried | first audio ms | fallback alone, slowest ms | audio-stop ms | audio s | stall ms "
        "| starts/stops | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(row for phase in phases for row in request_rows(phase, fallback)),
        "",
        "</details>",
        "",
        "Command:",
        "",
        "```",
        command_line(),
        "```",
    ]
    return "\n".join(lines)


def load_texts(folder: Path, count: int) -> list[str]:
    lines = text_lines(folder, TEXT_FILES)
    return [f"Request {index + 1}: {lines[index % len(lines)]}" for index in range(count)]


async def run(texts_dir: Path, requests: int, deadline: float) -> int:
    piper = PiperEngine.load()
    texts = load_texts(texts_dir, requests)
    phases = [
        Phase("A", "the primary hangs on every request; breaker out of the way", ["--breaker-failures", "1000000"], hang=True),
        Phase("A'", "the primary hangs on every request; default breaker", [], hang=True),
        Phase(
            "B",
            "the primary raises on every other request, for each of its sentences; default breaker, which counts "
            "sentences, so one failing reply of three sentences opens it",
            [],
            fail_every_other=True,
        ),
    ]
    started, machine = timestamp(), machine_description()
    with LoadMonitor() as load:
        fallback = await measure_fallback(piper, texts, deadline)
        for phase in phases:
            print(f"Phase {phase.name}: {phase.description}", flush=True)
            await run_phase(phase, piper, texts, deadline)
    section = render_section(phases, fallback, deadline, machine, load, started)
    write_section(SECTION, section)
    print(section)
    broken = sum(r.silent or not r.framed or r.timed_out for phase in phases for r in phase.responses)
    if broken:
        # Timings past the bound are a result; silence or broken framing is a server bug.
        print(f"error: {broken} response(s) silent, badly framed or timed out", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20, help="requests per phase (default: 20)")
    parser.add_argument("--deadline", type=float, default=1.0, help="seconds to first audio before the fallback (default: 1.0)")
    add_texts_argument(parser)
    args = parser.parse_args(argv)
    LOGS.mkdir(parents=True, exist_ok=True)
    # The server's own log (fallbacks, breaker, late renders) goes to a file, not over the report.
    logging.basicConfig(filename=LOGS / "fault_run.log", filemode="w", level=logging.INFO)
    if not args.texts.is_dir():
        print(f"error: benchmark texts not found in {args.texts}", file=sys.stderr)
        return 1
    return asyncio.run(run(args.texts, args.requests, args.deadline))


if __name__ == "__main__":
    sys.exit(main())
