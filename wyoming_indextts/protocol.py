"""The Wyoming wire, read defensively: bounded events, timeouts, and requests checked field by field.

The library's own reader drops the connection on bad JSON and reads any payload size into
memory; a voice server is reached by every satellite in the house, so one confused or hostile
client must cost only itself. Everything here turns bad input into `BadEvent` or `BadRequest`
with a message a person can act on, which the handler answers with an `error` event.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from wyoming.event import Event

from .sentences import UNSPEAKABLE


class BadEvent(Exception):
    """A client sent something that is not a Wyoming event we can read; the framing survives."""


class BrokenStream(Exception):
    """The framing is lost (an event stopped half-way): the connection must end."""


class BadRequest(Exception):
    """A well-formed event whose fields cannot be used; the message says which and why."""


@dataclass
class ReaderLimits:
    max_event_bytes: int = 1 << 20
    """Largest data or payload a client may send; a TTS request is text, so 1 MiB is generous."""

    idle_timeout: float = 300.0
    """Seconds a connection may stay silent between events while nothing is being answered."""

    event_timeout: float = 30.0
    """Seconds a client may take to send the rest of an event once its header line arrived."""


class EventReader:
    """Reads one event at a time. `read_header` may be cancelled (a timeout) without losing
    anything: the stream keeps a partial line until the rest arrives."""

    def __init__(self, reader: asyncio.StreamReader, limits: ReaderLimits) -> None:
        self._reader = reader
        self.limits = limits

    async def read_header(self) -> bytes | None:
        """The next header line, or None at the end of the stream."""
        try:
            line = await self._reader.readline()
        except ValueError:
            # The reader dropped the over-long line; the next one starts a fresh event.
            raise BadEvent("event header line too long") from None
        except (ConnectionError, asyncio.IncompleteReadError):
            return None
        return line or None

    async def read_body(self, line: bytes) -> Event:
        """The rest of the event whose header is `line`, within the event timeout."""
        try:
            header = _loads(line)
            if not isinstance(header, dict) or not isinstance(header.get("type"), str):
                raise ValueError("no event type")
            data = header.get("data") or {}
            data_length = _length(header.get("data_length"))
            payload_length = _length(header.get("payload_length"))
        except (ValueError, TypeError, OverflowError) as err:
            raise BadEvent(f"malformed event header ({err}); expected one JSON object per line") from None
        limit = self.limits.max_event_bytes
        if data_length > limit or payload_length > limit:
            await self._within_timeout(self._discard(data_length + payload_length))
            raise BadEvent(f"event {header['type']!r} is larger than {limit} bytes and was discarded")
        try:
            if data_length > 0:
                extra = _loads(await self._within_timeout(self._reader.readexactly(data_length)))
                if not isinstance(extra, dict) or not isinstance(data, dict):
                    raise ValueError("event data is not a JSON object")
                data = {**data, **extra}
            payload = (
                await self._within_timeout(self._reader.readexactly(payload_length)) if payload_length > 0 else None
            )
        except asyncio.IncompleteReadError:
            raise BrokenStream("the client closed the connection in the middle of an event") from None
        except ValueError as err:
            raise BadEvent(f"malformed event data ({err})") from None
        return Event(type=header["type"], data=data if isinstance(data, dict) else {}, payload=payload)

    async def _within_timeout(self, step):  # type: ignore[no-untyped-def]
        try:
            return await asyncio.wait_for(step, self.limits.event_timeout)
        except asyncio.TimeoutError:
            raise BrokenStream(f"an event stayed incomplete for {self.limits.event_timeout:g} s") from None

    async def _discard(self, count: int) -> None:
        """Read and drop bytes without holding them, so the framing stays intact."""
        while count > 0:
            chunk = await self._reader.read(min(count, 1 << 16))
            if not chunk:
                return
            count -= len(chunk)


def _loads(raw: bytes) -> object:
    """JSON, with the failures a hostile document can provoke turned into ValueError."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None


def _length(value: object) -> int:
    """A byte count from a header: absent is 0; anything but a whole number is refused."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"length {value!r} is not a number")
    if isinstance(value, float) and (value in (float("inf"), float("-inf")) or not value.is_integer()):
        raise ValueError(f"length {value!r} is not a whole number")
    return max(int(value), 0)





@dataclass
class TextRequest:
    """What `synthesize` and `synthesize-start` ask for."""

    text: str
    voice: str | None


def text_field(event: Event, required: bool = True) -> str:
    """The event's `text`, a string (lone surrogates and control characters go where every
    path's text goes: `normalize_sentence`)."""
    text = event.data.get("text")
    if text is None and not required:
        return ""
    if not isinstance(text, str):
        raise BadRequest(f"{event.type} needs 'text' to be a string, got {_kind(text)}")
    return text


def voice_field(event: Event) -> str | None:
    """The requested voice name: None when the client picked none (`voice` absent or null, or
    without a name); a voice that is not an object, or a name that is not a string, is refused."""
    voice = event.data.get("voice")
    if voice is None:
        return None
    if not isinstance(voice, dict):
        raise BadRequest(f"{event.type} needs 'voice' to be an object like {{\"name\": \"...\"}}, got {_kind(voice)}")
    name = voice.get("name")
    if name is None:
        return None
    if not isinstance(name, str):
        raise BadRequest(f"{event.type} needs 'voice.name' to be a string, got {_kind(name)}")
    return UNSPEAKABLE.sub("", name)


def text_request(event: Event, text_required: bool = True) -> TextRequest:
    return TextRequest(text=text_field(event, text_required), voice=voice_field(event))


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
