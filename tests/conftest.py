"""Shared test parts: the real server on a real loopback socket, the real bundled voice, and
engines made slow or broken on purpose around it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.event import Event

from wyoming_indextts.cache import AudioCache, DiskCache
from wyoming_indextts.engines.base import Engine, Voice
from wyoming_indextts.engines.kokoro import KokoroEngine
from wyoming_indextts.engines.piper import PiperEngine
from wyoming_indextts.handler import HandlerSettings
from wyoming_indextts.service import Service, TcpListener, assemble
from wyoming_indextts.synthesizer import ChainSettings, Synthesizer
from wyoming_indextts.voices import VoiceCatalogue

from .skip_guard import SkipGuard

# The repository's shared/ folder lies beside the clone, here and in CI.
SHARED = Path(__file__).resolve().parents[2] / "shared"


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipGuard(), "skip_guard")


@pytest.fixture(scope="session")
def piper() -> PiperEngine:
    return PiperEngine.load()


@pytest.fixture(scope="session")
def kokoro() -> KokoroEngine:
    """The bundled Mandarin voices (a few seconds to load: the model, jieba's dictionary)."""
    return KokoroEngine.load()


class CountingEngine:
    """Delegates to one voice of a real engine (its first by default), counting renders; can be renamed (to stand in
    for another engine or voice), made slow, hung, broken, or made to return garbage."""

    def __init__(
        self,
        inner: Engine,
        name: str | None = None,
        delay: float = 0.0,
        voice_name: str | None = None,
        languages: tuple[str, ...] | None = None,
        inner_voice: str | None = None,
    ) -> None:
        self.inner = inner
        self.inner_voice = next(v for v in inner.voices() if inner_voice in (None, v.name))
        self.name = name or inner.name
        self.delay = delay
        self.calls: list[str] = []
        self.fail_with: Exception | None = None
        self.garbage: object = None
        self.hang = threading.Event()
        self.release = threading.Event()
        self.voice = replace(
            self.inner_voice,
            name=voice_name or self.inner_voice.name,
            engine=self.name,
            languages=languages or self.inner_voice.languages,
        )

    def voices(self) -> Sequence[Voice]:
        return [self.voice]

    def voice_for_language(self, language: str) -> Voice | None:
        return None

    def synthesize(self, text: str, voice: Voice, *, opening: bool = True) -> Iterator[bytes]:
        self.calls.append(text)
        if self.hang.is_set():
            self.release.wait(30)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        if self.garbage is not None:
            yield self.garbage  # type: ignore[misc]
            return
        yield from self.inner.synthesize(text, self.inner_voice, opening=opening)

    def close(self) -> None:
        self.release.set()


@dataclass
class Harness:
    """A running server: the real handler behind asyncio's real TCP server on 127.0.0.1."""

    service: Service
    server: TcpListener
    cache: AudioCache | None
    port: int

    @property
    def synthesizer(self) -> Synthesizer:
        return self.service.synthesizer

    @property
    def catalogue(self) -> VoiceCatalogue:
        return self.service.catalogue

    def client(self) -> AsyncTcpClient:
        return AsyncTcpClient("127.0.0.1", self.port)


@contextlib.asynccontextmanager
async def running_server(
    engines: dict[str, Engine],
    default_voice: str = "en_US-joe-medium",
    cache: AudioCache | None = None,
    max_concurrent: int = 2,
    chain: ChainSettings | None = None,
    settings: HandlerSettings | None = None,
    fallback_voices: dict[str, str] | None = None,
) -> AsyncIterator[Harness]:
    """The service as `wyoming_indextts.service` builds it, on engines the test chose; the
engines stay open (they are usually session fixtures)."""
    service = assemble(
        engines, default_voice, cache=cache, max_concurrent=max_concurrent, chain=chain, settings=settings, fallback_voices=fallback_voices
    )
    server = await service.listen()
    try:
        yield Harness(service, server, cache, server.bound_port)
    finally:
        await server.stop()
        await service.drain()


def make_cache(tmp_path: Path, memory_bytes: int = 32 << 20, disk_bytes: int = 64 << 20) -> AudioCache:
    return AudioCache(memory_bytes, DiskCache(tmp_path / "cache", disk_bytes))


@dataclass
class Response:
    events: list[Event] = field(default_factory=list)

    @property
    def types(self) -> list[str]:
        """Event types with runs of audio-chunk folded into one, for order checks."""
        folded: list[str] = []
        for event in self.events:
            if event.type == "audio-chunk" and folded and folded[-1] == "audio-chunk":
                continue
            folded.append(event.type)
        return folded

    @property
    def audio(self) -> bytes:
        return b"".join(e.payload or b"" for e in self.events if e.type == "audio-chunk")

    @property
    def rate(self) -> int:
        return next(e.data["rate"] for e in self.events if e.type == "audio-start")

    @property
    def errors(self) -> list[str]:
        return [e.data.get("text", "") for e in self.events if e.type == "error"]


async def read_until(client: AsyncTcpClient, last: str, timeout: float = 60.0) -> Response:
    response = Response()
    async with asyncio.timeout(timeout):
        while True:
            event = await client.read_event()
            assert event is not None, f"connection closed; got {[e.type for e in response.events]}"
            response.events.append(event)
            if event.type == last:
                return response


def assert_voiced(pcm: bytes, rate: int) -> float:
    """The audio is loud enough and voiced in places (any language); returns its seconds."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    assert samples.size, "no audio"
    rms = float(np.sqrt(np.mean(samples**2)))
    assert rms > 0.02, f"audio is (nearly) silent: rms {rms:.4f}"
    frame = rate // 50
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    loud = np.sqrt((frames**2).mean(axis=1)) > 0.02
    assert 0.3 < loud.mean() <= 1.0, f"only {loud.mean():.0%} of 20 ms frames carry sound"
    return len(samples) / rate


def assert_speech(pcm: bytes, rate: int, text: str) -> None:
    """The audio is speech for this text: loud enough, voiced in places, and of a duration a
    speaker could plausibly take for it (English: roughly 8 to 30 characters a second)."""
    seconds = assert_voiced(pcm, rate)
    chars = len(text)
    assert chars / 30 <= seconds <= chars / 8 + 1.0, f"{seconds:.2f} s of audio for {chars} characters"
