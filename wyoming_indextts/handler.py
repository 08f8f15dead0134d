"""Wyoming events in, events out. Protocol only: engines, cache and chain live in the synthesizer."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe
from wyoming.server import AsyncEventHandler
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from .audio import AudioFormat
from .engines.base import Voice
from .sentences import SentenceSplitter, SplitterSettings, has_speakable
from .synthesizer import NoAudioError, Synthesizer
from .voices import VoiceCatalogue

_LOGGER = logging.getLogger(__name__)


@dataclass
class HandlerSettings:
    samples_per_chunk: int = 1024
    splitter: SplitterSettings = field(default_factory=SplitterSettings)
    max_event_bytes: int = 1 << 20
    """Largest data or payload a client may send; a TTS request is text, so 1 MiB is generous."""


class IndexTTSEventHandler(AsyncEventHandler):
    def __init__(
        self,
        catalogue: VoiceCatalogue,
        synthesizer: Synthesizer,
        settings: HandlerSettings,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(reader, writer)
        self.catalogue = catalogue
        self.synthesizer = synthesizer
        self.settings = settings
        self._response: _Response | None = None
        self._stream: _Response | None = None
        self._splitter = SentenceSplitter(settings.splitter)

    async def run(self) -> None:
        """Like the library's loop, but a malformed or oversized event costs the client an
        `error` event, not its connection."""
        self._is_running = True
        try:
            while self._is_running:
                try:
                    event = await self._read_event()
                except _BadEvent as err:
                    await self._send_error(str(err), "bad-event")
                    continue
                if event is None:
                    break
                await self.handle_event(event)
        finally:
            if self._stream is not None:
                self._stream.cancel()
            if self._response is not None:
                self._response.cancel()
            await self.disconnect()
            self.writer.close()

    async def _read_event(self) -> Event | None:
        try:
            line = await self.reader.readline()
        except ValueError:
            # The reader dropped the over-long line; the next one starts a fresh event.
            raise _BadEvent("event header line too long") from None
        except (ConnectionError, asyncio.IncompleteReadError):
            return None
        if not line:
            return None
        try:
            header = json.loads(line)
            if not isinstance(header, dict) or not isinstance(header.get("type"), str):
                raise ValueError("no event type")
            data = header.get("data") or {}
            data_length = int(header.get("data_length") or 0)
            payload_length = int(header.get("payload_length") or 0)
        except (ValueError, TypeError) as err:
            raise _BadEvent(f"malformed event header ({err}); expected one JSON object per line") from None
        limit = self.settings.max_event_bytes
        if data_length > limit or payload_length > limit:
            await self._discard(max(data_length, 0) + max(payload_length, 0))
            raise _BadEvent(f"event {header['type']!r} is larger than {limit} bytes and was discarded")
        try:
            if data_length > 0:
                extra = json.loads(await self.reader.readexactly(data_length))
                if not isinstance(extra, dict) or not isinstance(data, dict):
                    raise ValueError("event data is not a JSON object")
                data = {**data, **extra}
            payload = await self.reader.readexactly(payload_length) if payload_length > 0 else None
        except asyncio.IncompleteReadError:
            return None
        except ValueError as err:
            raise _BadEvent(f"malformed event data ({err})") from None
        return Event(type=header["type"], data=data if isinstance(data, dict) else {}, payload=payload)

    async def _discard(self, count: int) -> None:
        """Read and drop bytes without holding them, so the framing stays intact."""
        while count > 0:
            chunk = await self.reader.read(min(count, 1 << 16))
            if not chunk:
                return
            count -= len(chunk)

    async def handle_event(self, event: Event) -> bool:
        try:
            await self._dispatch(event)
        except Exception as err:  # noqa: BLE001 - one bad request must not cost the connection
            _LOGGER.exception("Error handling %s", event.type)
            await self._send_error(f"{type(err).__name__}: {err}", "internal-error")
        return True

    async def _dispatch(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self.write_event(self.catalogue.info().event())
        elif Synthesize.is_type(event.type):
            if self._stream is not None:
                return  # the compatibility copy of a streamed text: the stream speaks it
            await self._synthesize(Synthesize.from_event(event))
        elif SynthesizeStart.is_type(event.type):
            await self._stream_start(SynthesizeStart.from_event(event))
        elif SynthesizeChunk.is_type(event.type):
            await self._stream_chunk(SynthesizeChunk.from_event(event))
        elif SynthesizeStop.is_type(event.type):
            await self._stream_stop()
        else:
            _LOGGER.debug("Ignoring unknown event type %r", event.type)

    def _voice(self, requested: SynthesizeVoice | None) -> Voice:
        return self.catalogue.resolve(requested.name if requested is not None else None)

    async def _synthesize(self, request: Synthesize) -> None:
        if not isinstance(request.text, str) or not has_speakable(request.text):
            await self._send_error(
                "Nothing to say: the text is empty or has only punctuation, emoji or spaces", "empty-text"
            )
            await self._wait_previous()
            await self._send_empty_audio(self._voice(request.voice))
            return
        await self._wait_previous()
        response = _Response(self, self._voice(request.voice), streaming=False)
        splitter = SentenceSplitter(self.settings.splitter)
        for unit in [*splitter.add(request.text), *splitter.finish()]:
            response.add(unit)
        response.close()
        self._response = response

    async def _stream_start(self, start: SynthesizeStart) -> None:
        if self._stream is not None:
            await self._send_error("synthesize-start while a stream is open: send synthesize-stop first", "out-of-order")
            return
        await self._wait_previous()
        self._stream = _Response(self, self._voice(start.voice), streaming=True)
        self._splitter = SentenceSplitter(self.settings.splitter)

    async def _stream_chunk(self, chunk: SynthesizeChunk) -> None:
        if self._stream is None:
            await self._send_error("synthesize-chunk outside a stream: send synthesize-start first", "out-of-order")
            return
        for unit in self._splitter.add(chunk.text if isinstance(chunk.text, str) else ""):
            self._stream.add(unit)

    async def _stream_stop(self) -> None:
        stream = self._stream
        if stream is None:
            await self._send_error("synthesize-stop without synthesize-start", "out-of-order")
            return
        for unit in self._splitter.finish():
            stream.add(unit)
        if not stream.has_speakable:
            await self._send_error(
                "Nothing to say: the streamed text was empty or had only punctuation, emoji or spaces", "empty-text"
            )
        stream.close()
        self._stream = None
        self._response = stream
        # Wait here so a following synthesize-start is answered after this stream's end.
        await stream.finished()

    async def _wait_previous(self) -> None:
        if self._response is not None:
            await self._response.finished()
            self._response = None

    async def _send_empty_audio(self, voice: Voice) -> None:
        fmt = self.synthesizer.output_format(voice)
        await self.write_event(AudioStart(rate=fmt.rate, width=fmt.width, channels=fmt.channels).event())
        await self.write_event(AudioStop().event())

    async def _send_error(self, text: str, code: str) -> None:
        try:
            await async_write_event(Error(text=text, code=code).event(), self.writer)
        except ConnectionError:
            pass


class _BadEvent(Exception):
    """A client sent something that is not a Wyoming event we can read."""


class _Response:
    """One answer: exactly one audio-start, the audio of each unit as soon as it is ready,
    exactly one audio-stop, and synthesize-stopped after a stream. Units are spoken in order
    by one task, so the connection keeps reading text while earlier sentences are rendered."""

    def __init__(self, handler: IndexTTSEventHandler, voice: Voice, streaming: bool) -> None:
        self.handler = handler
        self.voice = voice
        self.streaming = streaming
        self.format: AudioFormat = handler.synthesizer.output_format(voice)
        self.has_speakable = False
        self._late_engines: set[str] = set()
        self._units: asyncio.Queue[str | None] = asyncio.Queue()
        self._started = False
        self._task = asyncio.create_task(self._speak_all())

    def add(self, unit: str) -> None:
        if has_speakable(unit):
            self.has_speakable = True
            self._units.put_nowait(unit)

    def close(self) -> None:
        self._units.put_nowait(None)

    def cancel(self) -> None:
        self._task.cancel()

    async def finished(self) -> None:
        await asyncio.shield(self._task)

    async def _speak_all(self) -> None:
        try:
            await self._speak_units()
        except ConnectionError:
            _LOGGER.debug("Client left before its audio was sent")

    async def _speak_units(self) -> None:
        fmt = self.format
        chunk_bytes = self.handler.settings.samples_per_chunk * fmt.width * fmt.channels
        opening = True
        while (unit := await self._units.get()) is not None:
            try:
                speech = self.handler.synthesizer.speak(unit, self.voice, fmt, self._late_engines, opening)
                opening = False
                async for pcm in speech:
                    await self._start()
                    for offset in range(0, len(pcm), chunk_bytes):
                        await self.handler.write_event(
                            AudioChunk(
                                rate=fmt.rate,
                                width=fmt.width,
                                channels=fmt.channels,
                                audio=pcm[offset : offset + chunk_bytes],
                            ).event()
                        )
            except NoAudioError as err:
                _LOGGER.error("%s: %r", err, unit)
                await self.handler._send_error(f"Could not speak {unit!r}: {err}", "no-audio")
            except Exception as err:  # noqa: BLE001 - one sentence must not end the response
                _LOGGER.exception("Failed to speak %r", unit)
                await self.handler._send_error(f"Could not speak {unit!r}: {type(err).__name__}: {err}", "internal-error")
        await self._start()
        await self.handler.write_event(AudioStop().event())
        if self.streaming:
            await self.handler.write_event(SynthesizeStopped().event())

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            fmt = self.format
            await self.handler.write_event(AudioStart(rate=fmt.rate, width=fmt.width, channels=fmt.channels).event())
