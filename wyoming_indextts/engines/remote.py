"""Another Wyoming TTS server as an engine: typically this same server on a machine with a GPU.

Its voices are learned with `describe`: once at start-up for at most a few seconds, then in a
thread of its own, which keeps them fresh and notices when the server goes away and comes back
(one log line each way; while it is away it is asked again with back-off). A remote that is
slow or silent at start-up never delays the server: its voices appear in `info` as soon as
they are learned. The last voices it knew stay advertised while it is away, so requests for
them still reach the fallback chain; a sentence asked of a server known to be away fails at
once instead of waiting for a connect timeout. They are kept in a file too, so a server
started while the remote is off (the house's mini PC booting before the desktop) still knows
them, and its default voice may be one of them.

Each sentence is one short connection (what Home Assistant does too): `synthesize-start`,
one `synthesize-chunk` and `synthesize-stop` when the server streams, else `synthesize`; the
audio comes back piece by piece and is passed on as it arrives. Everything the remote sends is
checked first (remote_wire.py): a value this server cannot use, too much audio for the text,
or a stall between events fails the sentence with a message naming the remote, and the chain's
next engine speaks. Deadlines, the breaker and the cache are the synthesizer's, as for any
engine; closing the iterator (an abandoned render) closes the socket, which frees the remote's
render too, and closing the engine closes every socket still open.

Blocking sockets with timeouts, from worker threads: no event loop of this server ever waits
on the remote.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from ..audio import StreamResampler, to_mono16
from .base import EngineError, Voice
from .remote_wire import MAX_IGNORED_EVENTS, EventReader, RemoteFormat, RemoteVoice, max_audio_seconds, remote_voices, send

_LOGGER = logging.getLogger(__name__)

REMOTE_RATE = 22050
"""Rate remote voices are served at here. `describe` does not tell a voice's rate, yet the
response format must be known before the first audio: IndexTTS2 and the bundled voices speak
22050 Hz, and audio at any other rate is resampled to it."""

_MAX_ERROR_TEXT = 200
"""Most of a remote's `error` text that goes into a message and the log."""


@dataclass(frozen=True)
class RemoteSettings:
    connect_timeout: float = 2.0
    """Seconds to open a connection: a machine that is off must cost little."""

    startup_timeout: float = 3.0
    """Seconds start-up waits for the voices, connection included; a remote slower than that
    (or one that accepts connections and never answers) is learned in the background."""

    first_audio_timeout: float = 30.0
    """Seconds a sentence waits for the remote's first event (this server sends `audio-start`
    with its first audio). The synthesizer's deadline hands the reply to the next engine much
    sooner; a render that goes on past it is kept for the cache, so this only bounds how long
    a silent remote holds a worker thread, well below the 60 s sentence cap."""

    read_timeout: float = 10.0
    """Seconds allowed for each later event, whole, and for the background `describe`: a
    remote that streams sends audio every fraction of a second, so this is a stalled one."""

    refresh: float = 30.0
    """Seconds between `describe` calls while the remote answers."""

    retry: float = 5.0
    """Seconds before asking again after a failure; doubled after each further failure, up to
    `refresh`, so a remote that is off for the night costs one connection attempt a `refresh`."""


def parse_remote_uri(uri: str) -> tuple[str, int]:
    """`tcp://host:port` → (host, port); ValueError with the reason otherwise."""
    parts = urlsplit(uri)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None or parts.path not in ("", "/"):
        raise ValueError(f"expected tcp://HOST:PORT, got {uri!r}")
    return parts.hostname, parts.port


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
        self._failures = 0
        self._open: set[socket.socket] = set()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Ask for the voices for at most `startup_timeout` seconds, then keep them fresh in the
        background. True when the remote answered in time; when not, its saved voices (if any)
        are served and its own appear as soon as it answers."""
        reachable = self.refresh(self.settings.startup_timeout)
        if not reachable:
            saved = self._load_voices()
            with self._lock:
                if not self._voices:
                    self._voices = saved
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

    def refresh(self, timeout: float | None = None) -> bool:
        """One `describe` within `timeout` seconds (`read_timeout` when None), connection
        included; updates the voices and the reachable state."""
        try:
            described, left_out = self._describe(timeout or self.settings.read_timeout)
        except (OSError, EngineError) as err:
            self._mark_down(err)
            return False
        voices = [self._voice(remote) for remote in described]
        with self._lock:
            came_back = not self._reachable
            changed = voices != self._voices
            self._voices = voices
            self._reachable = True
            self._failures = 0
        if changed:
            self._save_voices(voices)
        if came_back or changed:
            _LOGGER.info("Remote %s (%s) answers; voices: %s", self.name, self.uri, ", ".join(v.name for v in voices) or "none")
            if left_out:
                _LOGGER.warning("Remote %s (%s): left out %s", self.name, self.uri, "; ".join(left_out[:5]))
        return True

    def synthesize(self, text: str, voice: Voice, *, opening: bool = True) -> Iterator[bytes]:
        with self._lock:
            if not self._reachable:
                raise EngineError(f"remote {self.uri} is unreachable ({self._last_error}); asking it again in the background")
        try:
            sock = self._connect(self.settings.connect_timeout)
        except OSError as err:
            self._mark_down(err)
            raise EngineError(f"cannot connect to remote {self.uri}: {err}") from None
        streaming = voice.extra.get("streaming") == "true"
        try:
            yield from self._exchange(sock, text, voice, streaming)
        except OSError as err:
            if self._closed.is_set():
                raise EngineError(f"remote {self.uri}: the server is stopping") from None
            # Killed, unplugged or stalled mid-sentence: look again soon rather than after `refresh`.
            self._mark_down(err)
            raise EngineError(f"remote {self.uri} failed mid-sentence: {err}") from None
        except EngineError as err:
            raise EngineError(f"remote {self.uri}: {err}") from None
        finally:
            self._forget(sock)

    def close(self) -> None:
        """Stop the background `describe` and end every exchange still open: a worker thread
        blocked on a read returns at once."""
        self._closed.set()
        self._wake.set()
        with self._lock:
            still_open = list(self._open)
        for sock in still_open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its own thread

    def _exchange(self, sock: socket.socket, text: str, voice: Voice, streaming: bool) -> Iterator[bytes]:
        wanted = SynthesizeVoice(name=voice.name)
        if streaming:
            request = [SynthesizeStart(voice=wanted).event(), SynthesizeChunk(text=text).event(), SynthesizeStop().event()]
        else:
            request = [Synthesize(text=text, voice=wanted).event()]
        send(sock, request, self.settings.read_timeout)
        reader = EventReader(sock)
        most_seconds = max_audio_seconds(text)
        # A whole answer may take the first event's wait plus its longest audio in real time:
        # a remote that trickles tiny events cannot hold the thread for longer.
        ends = time.monotonic() + self.settings.first_audio_timeout + most_seconds
        fmt: RemoteFormat | None = None
        resampler: StreamResampler | None = None
        received = 0
        ignored = 0
        while True:
            wait = self.settings.first_audio_timeout if fmt is None else self.settings.read_timeout
            event = self._read(reader, min(wait, ends - time.monotonic()))
            if AudioStart.is_type(event.type):
                if fmt is not None:
                    raise EngineError("the remote sent a second audio-start in one answer")
                fmt = RemoteFormat.from_event(event)
                resampler = StreamResampler(fmt.rate, voice.sample_rate)
            elif AudioChunk.is_type(event.type):
                if fmt is None or resampler is None:
                    raise EngineError("the remote sent audio before its audio-start")
                audio = fmt.check_chunk(event)
                received += len(audio)
                if fmt.seconds(received) > most_seconds:
                    raise EngineError(f"the remote sent over {most_seconds:g} s of audio for {len(text)} characters of text")
                pcm = resampler.feed(to_mono16(audio, fmt.width, fmt.channels))
                if pcm:
                    yield pcm
            elif AudioStop.is_type(event.type):
                break
            else:
                ignored = self._ignore(event, ignored)
        if resampler is not None:
            tail = resampler.flush()
            if tail:
                yield tail
        if streaming:
            # The stream's own end; without it the remote would write to a closed socket.
            self._read_until(reader, SynthesizeStopped.is_type, ends)

    def _connect(self, timeout: float) -> socket.socket:
        sock = socket.create_connection(self._address, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._open.add(sock)
        if self._closed.is_set():
            self._forget(sock)
            raise ConnectionAbortedError("the server is stopping")
        return sock

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        sock.close()

    def _describe(self, timeout: float) -> tuple[list[RemoteVoice], list[str]]:
        ends = time.monotonic() + timeout
        sock = self._connect(min(self.settings.connect_timeout, timeout))
        try:
            send(sock, [Describe().event()], max(ends - time.monotonic(), 0.001))
            info = self._read_until(EventReader(sock), Info.is_type, ends)
        finally:
            self._forget(sock)
        return remote_voices(info)

    def _read(self, reader: EventReader, timeout: float) -> Event:
        event = reader.read(timeout)
        if Error.is_type(event.type):
            text = event.data.get("text")
            raise EngineError(f"the remote answered with an error: {str(text)[:_MAX_ERROR_TEXT]}")
        return event

    def _read_until(self, reader: EventReader, wanted: Callable[[str], bool], ends: float) -> Event:
        ignored = 0
        while True:
            event = self._read(reader, ends - time.monotonic())
            if wanted(event.type):
                return event
            ignored = self._ignore(event, ignored)

    @staticmethod
    def _ignore(event: Event, ignored: int) -> int:
        if ignored >= MAX_IGNORED_EVENTS:
            raise EngineError(f"the remote sent over {MAX_IGNORED_EVENTS} unexpected events (the last {event.type[:40]!r})")
        return ignored + 1

    def _voice(self, remote: RemoteVoice) -> Voice:
        described = {
            "program": remote.program,
            "voice": remote.name,
            "version": remote.version,
            "description": remote.description,
            "languages": list(remote.languages),
        }
        return Voice(
            name=remote.name,
            engine=self.name,
            sample_rate=REMOTE_RATE,
            languages=remote.languages,
            description=remote.description or remote.name,
            version=remote.version,
            attribution_name=remote.attribution_name,
            attribution_url=remote.attribution_url,
            # What the remote tells about a voice; its model and options are not told, so
            # clear this cache after changing them on the remote.
            fingerprint=hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest(),
            extra={"streaming": "true" if remote.streaming else "false"},
        )

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
            self._failures += 1
            self._last_error = str(err) or type(err).__name__
        if was_up and not self._closed.is_set():
            _LOGGER.warning("Remote %s (%s) is unreachable: %s; the local chain speaks until it answers again", self.name, self.uri, self._last_error)
            self._wake.set()

    def _next_refresh(self) -> float:
        with self._lock:
            if self._reachable:
                return self.settings.refresh
            backed_off = self.settings.retry * 2 ** min(max(self._failures - 1, 0), 16)
        return min(backed_off, max(self.settings.refresh, self.settings.retry))

    def _refresh_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self._next_refresh())
            self._wake.clear()
            if self._closed.is_set():
                return
            self.refresh()
