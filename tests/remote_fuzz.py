"""The remote engine fuzzed: a front server whose remote is the hostile stand-in
(tests/hostile_remote.py) is asked for sentences in the remote's voice by a few clients at a
time, with the real `wyoming` client; each reply must end, and between batches the front must
answer `describe` within 1 s and speak a fresh sentence in its bundled voice.

Used by tests/test_remote_fuzz.py (a few hundred events) and benchmarks/remote_fuzz.py
(>= 20,000 events against a server process).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from .hostile_remote import StandIn

REMOTE_VOICE = "remote-voice"
"""The stand-in's voice: only the remote has it, so each sentence asks the remote first and the
bundled English voice after it."""

TEXTS = [f"{word} {number}." for word in ("Lights on", "Timer done", "Door open", "Good night") for number in range(50)]
"""Short, and few enough that the bundled voice's fallback renders are soon cached: the remote
is asked each time (until it happens to answer a text well), the front's CPU stays free."""

REPLY_TIMEOUT = 60.0
"""A reply that has not ended by then is a hang (the sentence cap is 60 s)."""


@dataclass
class RemoteFuzzReport:
    sentences: int = 0
    events: int = 0
    """Answer events the stand-in sent."""
    hangs: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    """Replies that ended with neither audio nor an error."""
    errors: int = 0
    """Replies with an `error` event (no engine could speak a sentence)."""
    health_checks: int = 0
    failed_health_checks: list[str] = field(default_factory=list)
    describe_seconds: list[float] = field(default_factory=list)
    """Describe round trips: each health check's, and a poller's every half second throughout."""
    describe_failures: list[str] = field(default_factory=list)
    """Poller describes not answered within 1 s."""
    longest_gap: float = 0.0
    """Longest wait for audio inside a reply: to its first audio, or between two chunks."""
    rss_mib: list[float] = field(default_factory=list)


async def _ask(port: int, text: str, voice: str | None, timeout: float) -> tuple[int, int, float]:
    """(audio bytes, error events, longest gap) of one reply; TimeoutError when it hangs."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        wanted = SynthesizeVoice(name=voice) if voice else None
        await client.write_event(Synthesize(text=text, voice=wanted).event())
        audio = errors = 0
        gap = 0.0
        last = time.monotonic()
        ends = last + timeout
        while True:
            event = await asyncio.wait_for(client.read_event(), max(ends - time.monotonic(), 0.001))
            if event is None:
                raise ConnectionError("the front closed the connection before audio-stop")
            if AudioChunk.is_type(event.type):
                now = time.monotonic()
                gap, last = max(gap, now - last), now
                audio += len(event.payload or b"")
            elif Error.is_type(event.type):
                errors += 1
            elif AudioStop.is_type(event.type):
                return audio, errors, gap


async def describe(port: int, report: RemoteFuzzReport) -> None:
    """One describe, answered within 1 s (Home Assistant's timeout) or TimeoutError."""
    started = time.monotonic()
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        await asyncio.wait_for(_read_info(client), 1.0)
    report.describe_seconds.append(time.monotonic() - started)


async def health_check(port: int, number: int, report: RemoteFuzzReport) -> None:
    """Describe within 1 s, then a sentence never heard before spoken in the bundled voice
    (the default) within 30 s."""
    report.health_checks += 1
    step = "describe within 1 s"
    try:
        await describe(port, report)
        step = "a fresh sentence in the bundled voice within 30 s"
        audio, _, _ = await _ask(port, f"Health check number {number}.", None, 30.0)
        if audio < 8000:
            report.failed_health_checks.append(f"check {number}: only {audio} bytes of audio")
    except (asyncio.TimeoutError, ConnectionError, OSError) as err:
        report.failed_health_checks.append(f"check {number}: {step}: {type(err).__name__} {err}".strip())


async def _read_info(client: AsyncTcpClient) -> None:
    while True:
        event = await client.read_event()
        if event is None:
            raise ConnectionError("the front closed the connection before info")
        if Info.is_type(event.type):
            return


async def fuzz_remote(
    port: int,
    stand_in: StandIn,
    events: int,
    batch: int = 1_000,
    clients: int = 4,
    texts: list[str] = TEXTS,
    rss: Callable[[], float] | None = None,
    give_up_at: float = float("inf"),
) -> RemoteFuzzReport:
    """Ask the front for sentences in the remote's voice (`texts` in turn), `clients` at a
    time, until the stand-in has sent `events` answer events (or the monotonic clock passes
    `give_up_at`), with a health check after each `batch` events."""
    report = RemoteFuzzReport()
    turns = itertools.cycle(texts)

    async def client() -> None:
        while stand_in.events < target:
            text = next(turns)
            report.sentences += 1
            asked = stand_in.sentences
            try:
                audio, errors, gap = await _ask(port, text, REMOTE_VOICE, REPLY_TIMEOUT)
            except asyncio.TimeoutError:
                report.hangs.append(text)
                continue
            except (ConnectionError, OSError) as err:
                report.hangs.append(f"{text} ({type(err).__name__}: {err})")
                continue
            report.errors += errors > 0
            report.longest_gap = max(report.longest_gap, gap)
            if audio == 0 and errors == 0:
                report.silent.append(text)
            if stand_in.sentences == asked:
                # Answered from the cache (the remote spoke this text well): wait for the
                # stand-in's next voice version rather than spin.
                await asyncio.sleep(0.1)

    async def poller() -> None:
        while True:
            try:
                await describe(port, report)
            except (asyncio.TimeoutError, ConnectionError, OSError) as err:
                report.describe_failures.append(f"{type(err).__name__} {err}".strip())
            await asyncio.sleep(0.5)

    target = 0
    polling = asyncio.create_task(poller())
    try:
        while stand_in.events < events and time.monotonic() < give_up_at:
            target = min(stand_in.events + batch, events)
            await asyncio.gather(*(client() for _ in range(clients)))
            report.events = stand_in.events
            await health_check(port, report.health_checks + 1, report)
            if rss is not None:
                report.rss_mib.append(rss())
    finally:
        polling.cancel()
    return report
