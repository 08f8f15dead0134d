"""What a remote Wyoming server sends, read within bounds and checked before anything uses it.

A remote is another machine, and it may be broken, old, or not a Wyoming server at all: every
size is bounded before it is read, every read has a deadline, and every value is checked
against what this server can use. Anything else is an `EngineError` whose message says what the
remote sent, so the chain's next engine speaks and the log says which remote to look at.
"""

from __future__ import annotations

import io
import json
import socket
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from wyoming.event import Event, write_event

from ..audio import check_rate
from .base import EngineError

MAX_HEADER = 64 << 10
"""Longest event header line: a type and two lengths, or older servers' inline data."""
MAX_DATA = 1 << 20
"""Largest event data: `info` with hundreds of voices stays far below it."""
MAX_PAYLOAD = 4 << 20
"""Largest audio chunk: 95 s of 22050 Hz 16-bit mono, for a server that sends a sentence in
one chunk; servers stream a few KiB at a time. A read allocates the size it announces."""
MAX_IGNORED_EVENTS = 64
"""Events of other types tolerated in one answer (a newer protocol's additions)."""

SECONDS_PER_CHARACTER = 1.0
SECONDS_BASE = 10.0
"""The most audio accepted for a text: `SECONDS_BASE` + `SECONDS_PER_CHARACTER` per character.
The slowest speech here, the bundled Mandarin voice, takes about 0.38 s a character (two
sentences of 16-17 characters measured: 6.2-6.3 s), the English one at --length-scale 1.4 under
0.1 s (tests/test_remote.py), and a number read out in words can take 0.6 s a character; 1 s
each leaves room for a slower voice, and the base for pauses around a short text. More is a
broken remote (a wrong rate turned 500 samples into 250 s), and it would be cached."""

MAX_VOICES = 1000
MAX_NAME = 128
"""Longest voice name, language code list entry or version taken from a remote's `info`."""
MAX_LANGUAGES = 32
MAX_TEXT = 1000
"""Longest description or attribution taken from a remote's `info`; longer ones are cut."""


def max_audio_seconds(text: str) -> float:
    return SECONDS_BASE + SECONDS_PER_CHARACTER * len(text)


def send(sock: socket.socket, events: Iterable[Event], timeout: float) -> None:
    buffer = io.BytesIO()
    for event in events:
        write_event(event, buffer)
    sock.settimeout(timeout)
    sock.sendall(buffer.getvalue())


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _json(raw: bytes, what: str) -> dict:
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as err:
        raise EngineError(f"the remote sent an event {what} that is not JSON ({type(err).__name__}; is it a Wyoming server?)") from None
    if not isinstance(value, dict):
        raise EngineError(f"the remote sent an event {what} that is not a JSON object")
    return value


def _length(header: dict, key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if type(value) is not int or not 0 <= value <= limit:
        raise EngineError(f"the remote announced an event with {key} {str(value)[:40]}, not 0-{limit} bytes")
    return value


class EventReader:
    """Reads events from a socket, each whole event within a deadline (a remote that sends a
    byte every few seconds cannot hold a thread longer than one event's deadline)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def read(self, timeout: float) -> Event:
        """The next event. TimeoutError when it is not whole within `timeout` seconds,
        ConnectionResetError when the remote closes, EngineError when it breaks the protocol."""
        deadline = time.monotonic() + timeout
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > MAX_HEADER:
                raise EngineError(f"the remote sent an event header over {MAX_HEADER} bytes")
            self._receive(deadline, timeout)
        if end > MAX_HEADER:
            raise EngineError(f"the remote sent an event header over {MAX_HEADER} bytes")
        header = _json(bytes(self._buffer[:end]), "header")
        del self._buffer[: end + 1]
        event_type = header.get("type")
        if not isinstance(event_type, str) or not 0 < len(event_type) <= MAX_NAME:
            raise EngineError("the remote sent an event without a type")
        data = header.get("data") or {}
        if not isinstance(data, dict):
            raise EngineError(f"the remote sent a {event_type[:40]!r} event whose data is not a JSON object")
        data_length = _length(header, "data_length", MAX_DATA)
        payload_length = _length(header, "payload_length", MAX_PAYLOAD)
        if data_length:
            data = {**data, **_json(self._take(data_length, deadline, timeout), "data")}
        payload = self._take(payload_length, deadline, timeout) if payload_length else None
        return Event(type=event_type, data=data, payload=payload)

    def _take(self, size: int, deadline: float, timeout: float) -> bytes:
        while len(self._buffer) < size:
            self._receive(deadline, timeout)
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken

    def _receive(self, deadline: float, timeout: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no whole event within {timeout:g} s")
        self._sock.settimeout(remaining)
        try:
            received = self._sock.recv(1 << 16)
        except TimeoutError:
            raise TimeoutError(f"no whole event within {timeout:g} s") from None
        if not received:
            raise ConnectionResetError("the remote closed the connection")
        self._buffer += received


@dataclass(frozen=True)
class RemoteFormat:
    """A checked `audio-start`: what the remote's audio chunks must all say too."""

    rate: int
    width: int
    channels: int

    @property
    def frame_bytes(self) -> int:
        return self.width * self.channels

    @classmethod
    def from_event(cls, event: Event) -> RemoteFormat:
        data = event.data
        try:
            rate = check_rate(data.get("rate"))
        except ValueError as err:
            raise EngineError(f"the remote sent an unusable {event.type}: {err}") from None
        width, channels = data.get("width"), data.get("channels")
        if type(width) is not int or not 1 <= width <= 4:
            raise EngineError(f"the remote sent an {event.type} with samples of {str(width)[:40]} bytes; 1-4 are usable")
        if type(channels) is not int or not 1 <= channels <= 2:
            raise EngineError(f"the remote sent an {event.type} with {str(channels)[:40]} channels; 1 or 2 are usable")
        return cls(rate, width, channels)

    def check_chunk(self, event: Event) -> bytes:
        """The chunk's audio, whole frames of this format; EngineError otherwise."""
        said = RemoteFormat.from_event(event)
        if said != self:
            raise EngineError(f"the remote changed its audio format mid-stream, from {self} to {said}")
        audio = event.payload or b""
        if len(audio) % self.frame_bytes:
            raise EngineError(f"the remote sent an audio chunk of {len(audio)} bytes, not whole {self.frame_bytes}-byte frames")
        return audio

    def seconds(self, size: int) -> float:
        return size / (self.rate * self.frame_bytes)

    def __str__(self) -> str:
        return f"{self.rate} Hz, {self.width}-byte samples, {self.channels} channel(s)"


def _text(value: object, limit: int) -> str | None:
    """`value` when it is a string without control characters, cut to `limit`; else None."""
    if not isinstance(value, str) or any(unicodedata.category(c) == "Cc" for c in value[: limit + 1]):
        return None
    return value[:limit]


@dataclass(frozen=True)
class RemoteVoice:
    """A voice as a remote's `info` describes it, its values checked."""

    program: str
    name: str
    languages: tuple[str, ...]
    description: str | None
    version: str | None
    attribution_name: str
    attribution_url: str
    streaming: bool


def remote_voices(event: Event) -> tuple[list[RemoteVoice], list[str]]:
    """The installed voices an `info` event tells, and why any others were left out (a bad
    entry costs only itself). EngineError when the event holds no list of TTS programs."""
    programs = event.data.get("tts")
    if not isinstance(programs, list):
        raise EngineError("the remote's info lists no TTS programs (is it a Wyoming TTS server?)")
    kept: list[RemoteVoice] = []
    left_out: list[str] = []
    for program in programs:
        if not isinstance(program, dict) or program.get("installed") is not True:
            continue
        voices = program.get("voices")
        for voice in voices if isinstance(voices, list) else []:
            if not isinstance(voice, dict) or voice.get("installed") is not True:
                continue
            checked = _checked_voice(program, voice)
            if isinstance(checked, str):
                left_out.append(checked)
            elif all(k.name != checked.name for k in kept):
                kept.append(checked)
            if len(kept) == MAX_VOICES:
                left_out.append(f"voices past the first {MAX_VOICES}")
                return kept, left_out
    return kept, left_out


def _checked_voice(program: dict, voice: dict) -> RemoteVoice | str:
    """The voice with checked values, or why it is unusable."""
    name = voice.get("name")
    if _text(name, MAX_NAME) != name or not name or name != name.strip():
        return f"a voice named {str(name)[:40]!r} (names are 1-{MAX_NAME} printable characters)"
    languages = voice.get("languages")
    codes = [_text(code, MAX_NAME) for code in languages] if isinstance(languages, list) else []
    if not isinstance(languages, list) or len(codes) > MAX_LANGUAGES or codes != languages or not all(codes):
        return f"voice {name!r}: its languages are not a list of up to {MAX_LANGUAGES} codes"
    attribution = voice.get("attribution") if isinstance(voice.get("attribution"), dict) else {}
    return RemoteVoice(
        program=_text(program.get("name"), MAX_NAME) or "",
        name=name,
        languages=tuple(codes),
        description=_text(voice.get("description"), MAX_TEXT),
        version=_text(voice.get("version"), MAX_NAME),
        attribution_name=_text(attribution.get("name"), MAX_TEXT) or "",
        attribution_url=_text(attribution.get("url"), MAX_TEXT) or "",
        streaming=program.get("supports_synthesize_streaming") is True,
    )
