"""Another Wyoming TTS server as an engine: typically this same server on a machine with a GPU.

Its voices are learned with `describe` and refreshed in a thread of its own, which also notices
when the server goes away and comes back (one log line each way). The last voices it knew stay
advertised while it is away, so requests for them still reach the fallback chain; a sentence
asked of a server known to be away fails at once instead of waiting for a connect timeout.
They are kept in a file too, so a server started while the remote is off (the house's mini PC
booting before the desktop) still knows them, and its default voice may be one of them.

Each sentence is one short connection (what Home Assistant does too): `synthesize-start`,
one `synthesize-chunk` and `synthesize-stop` when the server streams, else `synthesize`; the
audio comes back piece by piece and is passed on as it arrives. Deadlines, the breaker and the
cache are the synthesizer's, as for any engine; closing the iterator (an abandoned render)
closes the socket, which frees the remote's render too.

Blocking sockets with timeouts, from worker threads: no event loop of this server ever waits
on the remote.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, read_event, write_event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from ..audio import SAMPLE_WIDTH, StreamResampler
from .base import EngineError, Voice

_LOGGER = logging.getLogger(__name__)

REMOTE_RATE = 22050
"""Rate remote voices are served at here. `describe` does not tell a voice's rate, yet the
response format must be known before the first audio: IndexTTS2 and the bundled voices speak
22050 Hz, and audio at any other rate is resampled to it."""

_MAX_LINE = 1 << 20
"""Longest event header accepted from the remote: a broken server must not fill memory."""
_MAX_BODY = 16 << 20
"""Largest event data or payload accepted (an audio chunk is a few KiB): a read allocates its
whole size up front."""


@dataclass(frozen=True)
class RemoteSettings:
    connect_timeout: float = 2.0
    """Seconds to open a connection: a machine that is off must cost little."""

    read_timeout: float = 60.0
    """Seconds of silence on an open connection before it is given up: the synthesizer's
    deadlines end the response's wait much sooner, and a render that goes on past them is kept
    for the cache, so this only frees the thread of a remote that stopped answering (the
    default sentence cap)."""

    refresh: float = 30.0
    """Seconds between `describe` calls while the remote answers."""

    retry: float = 5.0
    """Seconds between attempts while it does not."""


def parse_remote_uri(uri: str) -> tuple[str, int]:
    """`tcp://host:port` → (host, port); ValueError with the reason otherwise."""
    parts = urlsplit(uri)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None or parts.path not in ("", "/"):
        raise ValueError(f"expected tcp://HOST:PORT, got {uri!r}")
    return parts.hostname, parts.port


class _BoundedReader:
    """A socket file that refuses headers over `_MAX_LINE` and bodies over `_MAX_BODY`
    (wyoming's reader asks for whatever sizes the remote announces)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readline(self) -> bytes:
        line = self._stream.readline(_MAX_LINE)
        if len(line) >= _MAX_LINE and not line.endswith(b"\n"):
            raise EngineError(f"the remote sent an event header over {_MAX_LINE} bytes")
        return line

    def read(self, size: int) -> bytes:
        if size > _MAX_BODY:
            raise EngineError(f"the remote announced an event body of {size} bytes, over {_MAX_BODY}")
        return self._stream.read(size)


class RemoteEngine:
    def __init__(
        self, uri: str, name: str = "remote", settings: RemoteSettings | None = None, voices_file: Path | None = None
    ) -> None:
        """`voices_file` keeps the last voices the remote told, for a start while it is away."""
        self.uri = uri
        self.name = name
        self.settings = settings or RemoteSettings()
        self.voices_file = voices_file
        self._address = parse_remote_uri(uri)
        self._lock = threading.Lock()
        self._voices: list[Voice] = []
        self._reachable = False
        self._last_error = "not contacted yet"
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Ask for the voices once now, then keep them fresh in the background. True when the
        remote answered; when not, its voices appear as soon as it does."""
        reachable = self.refresh()
        if not reachable:
            self._voices = self._load_voices()
        self._thread = threading.Thread(target=self._refresh_loop, name=f"{self.name}-describe", daemon=True)
        self._thread.start()
        return reachable

    @property
    def reachable(self) -> bool:
        with self._lock:
            return self._reachable

    def voices(self) -> Sequence[Voice]:
        with self._lock:
            return list(self._voices)

    def voice_for_language(self, language: str) -> Voice | None:
        return None  # no preference: the catalogue takes the first voice of the language

    def refresh(self) -> bool:
        """One `describe`; updates the voices and the reachable state."""
        try:
            with self._connect() as sock, sock.makefile("rwb") as stream:
                write_event(Describe().event(), stream)
                info = self._read_until(stream, Info.is_type)
            voices = self._voices_from(Info.from_event(info))
        except (OSError, EngineError) as err:
            self._mark_down(err)
            return False
        with self._lock:
            came_back = not self._reachable
            changed = voices != self._voices
            self._voices = voices
            self._reachable = True
        if changed:
            self._save_voices(voices)
        if came_back or changed:
            _LOGGER.info("Remote %s (%s) answers; voices: %s", self.name, self.uri, ", ".join(v.name for v in voices) or "none")
        return True

    def synthesize(self, text: str, voice: Voice, *, opening: bool = True) -> Iterator[bytes]:
        with self._lock:
            if not self._reachable:
                raise EngineError(f"remote {self.uri} is unreachable ({self._last_error}); retrying every {self.settings.retry:g} s")
        try:
            sock = self._connect()
        except OSError as err:
            self._mark_down(err)
            raise EngineError(f"cannot connect to remote {self.uri}: {err}") from None
        streaming = voice.extra.get("streaming") == "true"
        with sock, sock.makefile("rwb") as stream:
            try:
                yield from self._exchange(stream, text, voice, streaming)
            except OSError as err:
                # Killed or unplugged mid-sentence: look again soon rather than after `refresh`.
                self._mark_down(err)
                raise EngineError(f"remote {self.uri} failed mid-sentence: {err}") from None

    def close(self) -> None:
        self._closed.set()
        self._wake.set()

    def _exchange(self, stream: BinaryIO, text: str, voice: Voice, streaming: bool) -> Iterator[bytes]:
        wanted = SynthesizeVoice(name=voice.name)
        if streaming:
            for event in (SynthesizeStart(voice=wanted), SynthesizeChunk(text=text), SynthesizeStop()):
                write_event(event.event(), stream)
        else:
            write_event(Synthesize(text=text, voice=wanted).event(), stream)
        start = AudioStart.from_event(self._read_until(stream, AudioStart.is_type))
        if start.width != SAMPLE_WIDTH or start.channels != 1:
            raise EngineError(f"remote {self.uri} sent {start.width}-byte samples in {start.channels} channels; expected 16-bit mono")
        resampler = StreamResampler(start.rate, voice.sample_rate)
        while True:
            event = self._read_event(stream)
            if AudioChunk.is_type(event.type):
                pcm = resampler.feed(AudioChunk.from_event(event).audio)
                if pcm:
                    yield pcm
            elif AudioStop.is_type(event.type):
                break
        tail = resampler.flush()
        if tail:
            yield tail
        if streaming:
            # The stream's own end; without it the remote would write to a closed socket.
            self._read_until(stream, SynthesizeStopped.is_type)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self._address, timeout=self.settings.connect_timeout)
        sock.settimeout(self.settings.read_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _read_event(self, stream: BinaryIO) -> Event:
        event = read_event(_BoundedReader(stream))  # type: ignore[arg-type]
        if event is None:
            raise ConnectionResetError("the remote closed the connection")
        if Error.is_type(event.type):
            raise EngineError(f"remote {self.uri}: {Error.from_event(event).text}")
        return event

    def _read_until(self, stream: BinaryIO, wanted) -> Event:  # noqa: ANN001 - an `X.is_type`
        while True:
            event = self._read_event(stream)
            if wanted(event.type):
                return event

    def _voices_from(self, info: Info) -> list[Voice]:
        voices = []
        for program in info.tts:
            if not program.installed:
                continue
            streaming = "true" if program.supports_synthesize_streaming else "false"
            for tts_voice in program.voices:
                if not tts_voice.installed:
                    continue
                described = {
                    "program": program.name,
                    "voice": tts_voice.name,
                    "version": tts_voice.version,
                    "description": tts_voice.description,
                    "languages": tts_voice.languages,
                }
                voices.append(
                    Voice(
                        name=tts_voice.name,
                        engine=self.name,
                        sample_rate=REMOTE_RATE,
                        languages=tuple(tts_voice.languages),
                        description=tts_voice.description or tts_voice.name,
                        version=tts_voice.version,
                        attribution_name=tts_voice.attribution.name,
                        attribution_url=tts_voice.attribution.url,
                        # What the remote tells about a voice; its model and options are not
                        # told, so clear this cache after changing them on the remote.
                        fingerprint=hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest(),
                        extra={"streaming": streaming},
                    )
                )
        return voices

    def _save_voices(self, voices: list[Voice]) -> None:
        if self.voices_file is None:
            return
        temporary = self.voices_file.with_name(self.voices_file.name + ".tmp")
        try:
            self.voices_file.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps([asdict(voice) for voice in voices], ensure_ascii=False), encoding="utf-8")
            os.replace(temporary, self.voices_file)
        except OSError as err:
            _LOGGER.warning("Cannot keep the voices of remote %s in %s: %s", self.uri, self.voices_file, err)

    def _load_voices(self) -> list[Voice]:
        if self.voices_file is None or not self.voices_file.is_file():
            return []
        try:
            saved = json.loads(self.voices_file.read_text(encoding="utf-8"))
            voices = [Voice(**{**fields, "languages": tuple(fields["languages"]), "engine": self.name}) for fields in saved]
        except (OSError, ValueError, TypeError, KeyError) as err:
            _LOGGER.warning("Ignoring the saved voices of remote %s in %s: %s", self.uri, self.voices_file, err)
            return []
        _LOGGER.info("Remote %s (%s) is away; serving its last known voices: %s", self.name, self.uri, ", ".join(v.name for v in voices))
        return voices

    def _mark_down(self, err: BaseException) -> None:
        with self._lock:
            was_up = self._reachable
            self._reachable = False
            self._last_error = str(err) or type(err).__name__
        if was_up:
            _LOGGER.warning("Remote %s (%s) is unreachable: %s; the local chain speaks until it answers again", self.name, self.uri, self._last_error)
            self._wake.set()

    def _refresh_loop(self) -> None:
        while not self._closed.is_set():
            interval = self.settings.refresh if self.reachable else self.settings.retry
            self._wake.wait(interval)
            self._wake.clear()
            if self._closed.is_set():
                return
            self.refresh()
