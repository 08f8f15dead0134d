"""Wyoming events in, events out. Protocol only: engines, cache and chain live in the synthesizer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from .audio import AudioFormat
from .engines.base import Voice
from .protocol import BadEvent, BadRequest, BrokenStream, EventReader, ReaderLimits, text_field, text_request
from .sentences import SentenceSplitter, SplitterSettings, has_speakable, split_units
from .synthesizer import NoAudioError, Synthesizer
from .voices import VoiceCatalogue

_LOGGER = logging.getLogger(__name__)


@dataclass
class HandlerSettings:
    samples_per_chunk: int = 1024
    splitter: SplitterSettings = field(default_factory=SplitterSettings)
    limits: ReaderLimits = field(default_factory=ReaderLimits)
    write_timeout: float = 30.0
    """Seconds a client may leave audio unread before it is disconnected: a satellite that
    stopped reading must not hold its response (and its memory) for ever."""


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
        `error` event, not its connection; a connection idle for too long, or one that stops
        half-way through an event, is closed."""
        self._is_running = True
        reader = EventReader(self.reader, self.settings.limits)
        try:
            while self._is_running:
                try:
                    line = await asyncio.wait_for(reader.read_header(), self.settings.limits.idle_timeout)
                except asyncio.TimeoutError:
                    if self._answering():
                        continue
                    _LOGGER.debug("Closing a connection idle for %g s", self.settings.limits.idle_timeout)
                    break
                except BadEvent as err:
                    await self._send_error(str(err), "bad-event")
                    continue
                if line is None:
                    break
                try:
                    event = await reader.read_body(line)
                except BadEvent as err:
                    await self._send_error(str(err), "bad-event")
                    continue
                except BrokenStream as err:
                    _LOGGER.debug("Closing connection: %s", err)
                    break
                except ConnectionError:
                    break  # the client reset the connection in the middle of an event
                await self.handle_event(event)
        finally:
            if self._stream is not None:
                self._stream.cancel()
            if self._response is not None:
                self._response.cancel()
            await self.disconnect()
            self.writer.close()

    def _answering(self) -> bool:
        return any(r is not None and not r.done() for r in (self._stream, self._response))

    async def write_event(self, event: Event) -> None:
        """Send an event, giving up on a client that leaves it unread for `write_timeout`."""
        try:
            await asyncio.wait_for(async_write_event(event, self.writer), self.settings.write_timeout)
        except asyncio.TimeoutError:
            self.writer.transport.abort()
            raise ConnectionResetError(f"client read nothing for {self.settings.write_timeout:g} s") from None

    async def handle_event(self, event: Event) -> bool:
        try:
            await self._dispatch(event)
        except BadRequest as err:
            _LOGGER.debug("Bad request: %s", err)  # the client hears why; the log is not theirs to fill
            await self._send_error(str(err), "bad-request")
        except ConnectionError:
            self._is_running = False
        except Exception as err:  # noqa: BLE001 - one bad request must not cost the connection
            # One line per failure (a client could otherwise flood the log); the traceback
            # only with --debug.
            _LOGGER.error("Error handling %s: %s: %s", event.type, type(err).__name__, err)
            _LOGGER.debug("Traceback", exc_info=True)
            await self._send_error(f"The server failed to handle {event.type}; its log says why", "internal-error")
        return True

    async def _dispatch(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self.write_event(self.catalogue.info().event())
        elif Synthesize.is_type(event.type):
            if self._stream is not None:
                return  # the compatibility copy of a streamed text: the stream speaks it
            request = text_request(event)
            await self._synthesize(request.text, request.voice)
        elif SynthesizeStart.is_type(event.type):
            await self._stream_start(text_request(event, text_required=False).voice)
        elif SynthesizeChunk.is_type(event.type):
            await self._stream_chunk(text_field(event))
        elif SynthesizeStop.is_type(event.type):
            await self._stream_stop()
        else:
            _LOGGER.debug("Ignoring unknown event type %r", event.type)

    async def _synthesize(self, text: str, voice_name: str | None) -> None:
        voice = self.catalogue.resolve(voice_name)
        if not has_speakable(text):
            await self._send_error(
                "Nothing to say: the text is empty or has only punctuation, emoji or spaces", "empty-text"
            )
            await self._wait_previous()
            await self._send_empty_audio(voice)
            return
        await self._wait_previous()
        response = _Response(self, voice, streaming=False)
        splitter = SentenceSplitter(self.settings.splitter)
        for unit in await split_units(splitter, text, finish=True):
            response.add(unit)
        response.close()
        self._response = response

    async def _stream_start(self, voice_name: str | None) -> None:
        if self._stream is not None:
            await self._send_error("synthesize-start while a stream is open: send synthesize-stop first", "out-of-order")
            return
        await self._wait_previous()
        self._stream = _Response(self, self.catalogue.resolve(voice_name), streaming=True)
        self._splitter = SentenceSplitter(self.settings.splitter)

    async def _stream_chunk(self, text: str) -> None:
        if self._stream is None:
            await self._send_error("synthesize-chunk outside a stream: send synthesize-start first", "out-of-order")
            return
        for unit in await split_units(self._splitter, text):
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
        fmt = voice.output_format
        await self.write_event(AudioStart(rate=fmt.rate, width=fmt.width, channels=fmt.channels).event())
        await self.write_event(AudioStop().event())

    async def _send_error(self, text: str, code: str) -> None:
        try:
            await self.write_event(Error(text=text, code=code).event())
        except ConnectionError:
            pass


class _Response:
    """One answer: exactly one audio-start, the audio of each unit as soon as it is ready,
    exactly one audio-stop, and synthesize-stopped after a stream. Units are spoken in order
    by one task, so the connection keeps reading text while earlier sentences are rendered."""

    def __init__(self, handler: IndexTTSEventHandler, voice: Voice, streaming: bool) -> None:
        self.handler = handler
        self.voice = voice
        self.streaming = streaming
        self.format: AudioFormat = voice.output_format
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

    def done(self) -> bool:
        return self._task.done()

    async def finished(self) -> None:
        await asyncio.shield(self._task)

    async def _speak_all(self) -> None:
        try:
            await self._speak_units()
        except ConnectionError as err:
            _LOGGER.debug("Client left before its audio was sent: %s", err)

    async def _speak_units(self) -> None:
        fmt = self.format
        chunk_bytes = self.handler.settings.samples_per_chunk * fmt.width * fmt.channels
        opening = True
        while (unit := await self._units.get()) is not None:
            try:
                speech = self.handler.synthesizer.speak(unit, self.voice, fmt, self._late_engines, opening)
                opening = False
                # Closed at once when the client leaves, so everything the sentence holds
                # is given back now, not whenever the garbage collector gets to it.
                async with contextlib.aclosing(speech) as pieces:
                    async for pcm in pieces:
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
            except ConnectionError:
                raise
            except Exception as err:  # noqa: BLE001 - one sentence must not end the response
                _LOGGER.error("Failed to speak %r: %s: %s", unit, type(err).__name__, err)
                _LOGGER.debug("Traceback", exc_info=True)
                await self.handler._send_error(f"Could not speak {unit!r}; the server's log says why", "internal-error")
        await self._start()
        await self.handler.write_event(AudioStop().event())
        if self.streaming:
            await self.handler.write_event(SynthesizeStopped().event())

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            fmt = self.format
            await self.handler.write_event(AudioStart(rate=fmt.rate, width=fmt.width, channels=fmt.channels).event())
