"""The whole server (Wyoming and HTTP on one synthesizer) on real loopback sockets, run on an
event loop of its own thread, so sync clients (the official `openai` client, hypothesis,
Playwright) talk to it as any outside client would."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_indextts.cache import AudioCache
from wyoming_indextts.engines.base import Engine
from wyoming_indextts.http import HttpAddress, HttpServer, HttpSettings
from wyoming_indextts.http.library import UploadLimits, VoiceLibrary
from wyoming_indextts.prerender import EditedLists, Prerenderer
from wyoming_indextts.synthesizer import ChainSettings

from tests.conftest import Harness, Response, read_until, running_server

T = TypeVar("T")
WAV_HEADER_BYTES = 44


@dataclass
class LiveServer:
    harness: Harness
    http: HttpServer
    library: VoiceLibrary | None
    prerenderer: Prerenderer
    loop: asyncio.AbstractEventLoop

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http.port}"

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def wyoming(self, text: str, voice: str | None = None) -> Response:
        async def ask() -> Response:
            async with self.harness.client() as client:
                request = Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None)
                await client.write_event(request.event())
                return await read_until(client, "audio-stop", timeout=120)

        return self.run(ask())


@contextlib.contextmanager
def live_server(
    engines: dict[str, Engine],
    default_voice: str = "en_US-joe-medium",
    cache: AudioCache | None = None,
    chain: ChainSettings | None = None,
    settings: HttpSettings | None = None,
    uploads: UploadLimits | None = None,
    prerender_dir: Path | None = None,
) -> Iterator[LiveServer]:
    """`uploads`: voice uploads on, into the voices folder of the `indextts` engine;
    `prerender_dir`: pre-render lists edited over HTTP, kept there."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="live-server", daemon=True)
    thread.start()
    wyoming = running_server(engines, default_voice, cache=cache, chain=chain)

    async def start() -> tuple[Harness, HttpServer, VoiceLibrary | None, Prerenderer]:
        harness = await wyoming.__aenter__()
        library = None if uploads is None else harness.service.voice_library(uploads)
        http_settings = settings or HttpSettings()
        edited = EditedLists(prerender_dir) if prerender_dir is not None else None
        prerenderer = Prerenderer(harness.synthesizer, http_settings.splitter, edited=edited)
        http = await harness.service.start_http(HttpAddress("127.0.0.1", 0), http_settings, library, prerenderer)
        return harness, http, library, prerenderer

    harness, http, library, prerenderer = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    live = LiveServer(harness, http, library, prerenderer, loop)
    try:
        yield live
    finally:
        loop.call_soon_threadsafe(prerenderer.stop)
        live.run(http.stop())
        if library is not None:
            live.run(library.drain())
        live.run(wyoming.__aexit__(None, None, None))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
