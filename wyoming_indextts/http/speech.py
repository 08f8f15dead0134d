"""Text in, an HTTP audio response out, through the synthesizer Wyoming uses.

The path is the Wyoming handler's: the same sentence splitter and settings, the same
`Synthesizer.speak` per unit in the voice's output format (so the cache key, and so the
cached render, is the same for both protocols), one set of late engines per response, the
first unit marked as the opening one. A sentence no engine can speak is logged and skipped,
as the handler does; only when nothing at all can be spoken does the client get an error,
which HTTP can still send because the first audio is awaited before the headers go out.
That wait also tells who spoke the first sentence: `X-Voice` names that voice (a fallback's
when the voice asked for could not speak in time), `X-Voice-Asked` the voice asked for,
`X-Voice-Route` how it was spoken (cache, live, fallback) and `X-Voice-Queued: 1` that the
sentence is in the render queue for the voice asked for.

The event loop is Wyoming's too, so nothing here does CPU work on it: long text is checked
in a worker thread, and resampling and encoding run in worker threads (see formats.py). The
response watches for the client hanging up and then stops rendering and encoding at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..engines.base import Voice, speed_of
from ..heard import Spoken
from ..sentences import SPLIT_OFF_LOOP_CHARS, SentenceSplitter, SplitterSettings, has_speakable, split_units
from ..synthesizer import NoAudioError, Synthesizer
from .errors import ApiError, send_json_error
from .formats import Encoder, OutputFormat, encoder_for
from .metrics import Metrics

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

NOTHING_TO_SAY = "Nothing to say: the text is empty or has only punctuation, emoji or spaces"

MAX_HELD_SECONDS = 600
"""Longest reply in a format sent whole (FLAC, MP3, Opus): it is held in memory until the
end, so 1 MiB of text must not become hours of audio. WAV and PCM stream and have no cap."""

FASTEST_LETTERS_PER_SECOND = 30
FASTEST_WIDE_PER_SECOND = 10
"""Faster than any voice speaks letters (and digits) of alphabetic scripts, and CJK
characters (about twice a fast speaker's rate): text longer than these allow cannot fit
MAX_HELD_SECONDS, so it is refused before anything renders."""

ENCODING_THREADS = ThreadPoolExecutor(2, thread_name_prefix="http-encode")
"""Resampling and encoding of every HTTP reply: a pool of its own, so a flood of mp3 requests
queues here instead of taking the default pool's threads from the Wyoming side's cache reads."""

_WIDE = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def shortest_speech_seconds(text: str) -> float:
    """A lower bound on how long any voice takes to say `text` at speed 1.0."""
    wide = len(text) - len(_WIDE.sub("", text))
    letters = sum(map(str.isalnum, text)) - wide
    return letters / FASTEST_LETTERS_PER_SECOND + wide / FASTEST_WIDE_PER_SECOND


def _too_long(fmt: OutputFormat, what: str) -> str:
    return (
        f"{what} longer than the {MAX_HELD_SECONDS // 60} minutes a {fmt.name} reply may hold: "
        "ask for wav or pcm, which stream, or send the text in parts"
    )


@dataclass
class _Failures:
    messages: list[str] = field(default_factory=list)


async def speak_text(
    synthesizer: Synthesizer,
    text: str,
    voice: Voice,
    splitter: SplitterSettings,
    failures: _Failures,
    heard: list[Spoken] | None = None,
) -> AsyncIterator[bytes]:
    """PCM of the whole text in the voice's format, unit by unit as each renders; who spoke
    each unit is appended to `heard`."""
    fmt = voice.output_format
    late_engines: set[str] = set()
    opening = True
    for unit in await split_units(SentenceSplitter(splitter), text, finish=True):
        if not has_speakable(unit):
            continue
        try:
            # Closed at once when the client leaves, not whenever the collector gets to it.
            async with contextlib.aclosing(synthesizer.speak(unit, voice, fmt, late_engines, opening, heard)) as pieces:
                async for pcm in pieces:
                    yield pcm
        except NoAudioError as err:
            _LOGGER.error("%s: %r", err, unit)
            failures.messages.append(f"Could not speak {unit!r}: {err}")
        opening = False


async def _check_text(text: str, fmt: OutputFormat, speed: float) -> None:
    def check() -> str | None:
        if not has_speakable(text):
            return NOTHING_TO_SAY
        if not fmt.streams and shortest_speech_seconds(text) / speed > MAX_HELD_SECONDS:
            return _too_long(fmt, "This text takes")
        return None

    # Scanning 1 MiB of text takes a while: not on the loop.
    problem = await asyncio.to_thread(check) if len(text) > SPLIT_OFF_LOOP_CHARS else check()
    if problem == NOTHING_TO_SAY:
        raise ApiError(400, problem, "empty_text")
    if problem is not None:
        raise ApiError(413, problem, "audio_too_long")


async def speech_response(
    synthesizer: Synthesizer,
    voice: Voice,
    text: str,
    fmt: OutputFormat,
    splitter: SplitterSettings,
    metrics: Metrics,
    endpoint: str,
    pcm_rate: int | None = None,
) -> AudioResponse:
    """A response once the first audio is in hand; ApiError when there is none."""
    await _check_text(text, fmt, speed_of(voice))
    started = time.monotonic()
    failures = _Failures()
    heard: list[Spoken] = []
    pcm = speak_text(synthesizer, text, voice, splitter, failures, heard)
    try:
        first = await anext(pcm)
    except StopAsyncIteration:
        raise ApiError(503, "; ".join(failures.messages) or "no audio was produced", "no_audio") from None
    except BaseException:
        await pcm.aclose()
        raise
    metrics.time_to_first_audio.labels(endpoint).observe(time.monotonic() - started)

    async def audio() -> AsyncIterator[bytes]:
        try:
            yield first
            async for piece in pcm:
                yield piece
        finally:
            await pcm.aclose()

    rate = voice.output_format.rate
    out_rate = fmt.fixed_rate or (pcm_rate if fmt.name == "pcm" and pcm_rate else rate)
    # Percent-encoded: a clip in the voices folder may have a name in any script (奶奶.wav).
    spoke = heard[0] if heard else Spoken(voice.name, voice.name, voice.engine, "live")
    headers = {
        "X-Voice": quote(spoke.voice),
        "X-Voice-Asked": quote(voice.name),
        "X-Voice-Route": spoke.route,
        "X-Sample-Rate": str(out_rate),
    }
    if spoke.queued:
        headers["X-Voice-Queued"] = "1"
    held_bytes = None if fmt.streams else MAX_HELD_SECONDS * voice.output_format.bytes_per_second
    return AudioResponse(audio(), encoder_for(fmt, rate, pcm_rate), fmt, held_bytes, headers)


class AudioResponse(StreamingResponse):
    """Streams (WAV, PCM) or holds and then sends (FLAC, MP3, Opus) the encoded audio, while
    listening for the client to hang up: then the render and the encoder stop at once instead
    of at the next write, which for a held format would come only after the whole text."""

    def __init__(
        self, pcm: AsyncIterator[bytes], encoder: Encoder, fmt: OutputFormat, held_bytes: int | None, headers: dict[str, str]
    ) -> None:
        super().__init__(pcm, media_type=fmt.media_type, headers=headers)
        self.pcm = pcm
        self.encoder = encoder
        self.fmt = fmt
        self.held_bytes = held_bytes
        """PCM bytes a held format may reach (None: it streams)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sending = asyncio.ensure_future(self._send(send))
        hangup = asyncio.ensure_future(_hangup(receive))
        try:
            await asyncio.wait((sending, hangup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sending, hangup):
                task.cancel()
            # Cancelled once: their cleanup (closing the render) runs to its end.
            await asyncio.gather(sending, hangup, return_exceptions=True)
        if not sending.cancelled() and isinstance(sending.exception(), Exception):
            error = sending.exception()
            if not isinstance(error, OSError):  # OSError: the client left while we wrote
                raise error  # type: ignore[misc]

    async def _run(self, work: Callable[..., T], *args: object) -> T:
        if self.encoder.cpu_bound:
            return await asyncio.get_running_loop().run_in_executor(ENCODING_THREADS, work, *args)
        return work(*args)

    async def _send(self, send: Send) -> None:
        async with contextlib.aclosing(self.pcm) as pcm:
            if self.held_bytes is None:
                await self._stream(pcm, send)
            else:
                await self._send_whole(pcm, self.held_bytes, send)

    async def _stream(self, pcm: AsyncIterator[bytes], send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        head = self.encoder.start()
        if head:
            await send({"type": "http.response.body", "body": head, "more_body": True})
        async for piece in pcm:
            out = await self._run(self.encoder.feed, piece)
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
        tail = await self._run(self.encoder.finish)
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    async def _send_whole(self, pcm: AsyncIterator[bytes], held_bytes: int, send: Send) -> None:
        received = 0
        async for piece in pcm:
            received += len(piece)
            if received > held_bytes:
                await send_json_error(send, 413, _too_long(self.fmt, "The audio came out"), "audio_too_long")
                return
            await self._run(self.encoder.feed, piece)
        body = await self._run(self.encoder.finish)
        headers = [*self.raw_headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _hangup(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass

