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
"""

from __future__ import annotations

import contextlib

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from ..engines.base import Voice
from ..heard import Spoken
from ..sentences import SentenceSplitter, SplitterSettings, has_speakable, split_units
from ..synthesizer import NoAudioError, Synthesizer
from .errors import ApiError
from .formats import OutputFormat, encode
from .metrics import Metrics

_LOGGER = logging.getLogger(__name__)

NOTHING_TO_SAY = "Nothing to say: the text is empty or has only punctuation, emoji or spaces"


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


async def speech_response(
    synthesizer: Synthesizer,
    voice: Voice,
    text: str,
    fmt: OutputFormat,
    splitter: SplitterSettings,
    metrics: Metrics,
    endpoint: str,
    pcm_rate: int | None = None,
) -> StreamingResponse:
    """A streamed response once the first audio is in hand; ApiError when there is none."""
    if not has_speakable(text):
        raise ApiError(400, NOTHING_TO_SAY, "empty_text")
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
    return StreamingResponse(encode(audio(), rate, fmt, pcm_rate), media_type=fmt.media_type, headers=headers)
