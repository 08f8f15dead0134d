"""The one place a server is wired: engines → voice catalogue → cache → synthesizer → handler
settings, then the Wyoming listener and the HTTP app on top. `__main__`, the tests and the
benchmarks all build through here, so what they run is what a user runs.

Builders raise `ServiceError` with a message a user can act on; the command line turns it into
its one-line error (exit 2), a test or a benchmark sees an exception.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from wyoming.server import AsyncTcpServer, HandlerFactory

from .cache import AudioCache, DiskCache
from .engines.base import INDEXTTS, KOKORO, PIPER, SAMBERT, Engine, EngineError
from .engines.indextts import IndexTTSEngine, IndexTTSOptions, ModelError
from .engines.piper import BUNDLED_VOICE, PiperEngine, PiperOptions
from .engines.remote import RemoteEngine, parse_remote_uri
from .engines.sambert import SambertEngine, SambertSettings
from .engines.sessions import use_provider, use_shared_thread_pool
from .handler import HandlerSettings, IndexTTSEventHandler
from .heard import HeardCounts
from .ledger import LEDGER_FILE, Ledger, LedgerError
from .render_queue import RenderQueue
from .malloc import fix_mmap_threshold
from .sentences import SplitterSettings
from .shared_cache import RedisCache
from .synthesizer import ChainSettings, Synthesizer
from .voices import VoiceCatalogue

if TYPE_CHECKING:  # annotations only; the [http] extra is imported only when HTTP is asked for
    from asyncio.trsock import TransportSocket

    from .http import HttpAddress, HttpServer, HttpSettings
    from .http.library import UploadLimits, VoiceLibrary
    from .prerender import Prerenderer

_LOGGER = logging.getLogger(__name__)

# English falls back to the bundled local voice (fast, no cloud); other languages ask the
# fallback engines for a voice of their own language. `--fallback-voice` overrides.
DEFAULT_FALLBACK_VOICES = {"en": BUNDLED_VOICE}


class ServiceError(Exception):
    """A setting the user has to change before the server can run; the message says which."""


class TcpListener(AsyncTcpServer):
    """wyoming's TCP server that tells which port it bound, so port 0 (a free one) is usable."""

    @property
    def bound_port(self) -> int:
        assert self._server is not None, "start() the listener first"
        return self._server.sockets[0].getsockname()[1]

    @property
    def socket(self) -> TransportSocket:
        """The listening socket (accepted ones inherit its options, such as buffer sizes)."""
        assert self._server is not None, "start() the listener first"
        return self._server.sockets[0]


@dataclass
class Service:
    """Everything a server process runs on: one synthesizer behind every protocol."""

    engines: dict[str, Engine]
    catalogue: VoiceCatalogue
    synthesizer: Synthesizer
    settings: HandlerSettings
    provider: str = "cpu"
    """The ONNX Runtime execution provider in use (after any fallback to the CPU)."""

    def handler_factory(self) -> HandlerFactory:
        return partial(IndexTTSEventHandler, self.catalogue, self.synthesizer, self.settings)

    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> TcpListener:
        """The Wyoming server on a TCP port, serving in the background (stop() it)."""
        listener = TcpListener(host, port)
        await listener.start(self.handler_factory())
        return listener

    def voice_library(self, uploads: UploadLimits) -> VoiceLibrary | None:
        """Voice uploads into the IndexTTS engine's voices folder; None when IndexTTS is off."""
        from .http.library import VoiceLibrary

        indextts = self.engines.get(INDEXTTS)
        return VoiceLibrary(indextts, self.catalogue, uploads) if isinstance(indextts, IndexTTSEngine) else None

    async def start_http(
        self,
        address: HttpAddress,
        settings: HttpSettings,
        library: VoiceLibrary | None,
        prerenderer: Prerenderer | None = None,
    ) -> HttpServer:
        """The HTTP API and page on this loop, synthesizer and cache; `prerenderer`: its
        progress in /health and /metrics."""
        from .http import HttpServer, create_app

        app = create_app(self.catalogue, self.synthesizer, settings, library, prerenderer)
        server = HttpServer(app, address, settings.trusted_proxies)
        try:
            await server.start()
        except OSError as err:
            raise ServiceError(f"--http-uri: {err}") from err
        return server

    async def drain(self) -> None:
        """Wait for background renders (late renders, disk writes) to finish."""
        await self.synthesizer.drain()

    async def stop(self, timeout: float) -> bool:
        """At shutdown: cancel the renders, wait up to `timeout` seconds for their threads and
        the cache writes, then close the engines. False when a render thread was still inside
        an engine: its sessions are left open then, since closing them under a running
        ONNX Runtime call would crash it."""
        stuck = await self.synthesizer.stop(timeout)
        if stuck:
            _LOGGER.warning("%d render(s) still running after %g s; not waiting for them", stuck, timeout)
            return False
        self.close()
        return True

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()
        if self.synthesizer.heard is not None:
            self.synthesizer.heard.ledger.close()


def assemble(
    engines: Mapping[str, Engine],
    default_voice: str = BUNDLED_VOICE,
    *,
    cache: AudioCache | None = None,
    max_concurrent: int = 2,
    chain: ChainSettings | None = None,
    settings: HandlerSettings | None = None,
    fallback_voices: Mapping[str, str] | None = None,
    provider: str = "cpu",
) -> Service:
    """A service on engines already loaded. An unknown default voice raises ServiceError."""
    engines = dict(engines)
    try:
        catalogue = VoiceCatalogue(engines, default_voice, dict(fallback_voices) if fallback_voices is not None else None)
    except ValueError as err:
        raise ServiceError(f"--voice: {err}") from err
    synthesizer = Synthesizer(catalogue, cache, max_concurrent, chain)
    return Service(engines, catalogue, synthesizer, settings or HandlerSettings(), provider)


def build_service(args: argparse.Namespace, engines: Mapping[str, Engine] | None = None) -> Service:
    """The service the command line describes; `engines` replaces the ones it would load (a
    benchmark's engine broken on purpose). Raises ServiceError."""
    try:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ServiceError(f"cannot create data folder {args.data_dir}: {err.strerror or err}") from err
    provider = "cpu"
    if engines is None:
        fix_mmap_threshold()  # before the engines' first large buffers (see malloc.py)
        use_shared_thread_pool(args.threads)
        provider = use_provider(args.provider)
        try:
            engines = load_engines(args)
        except EngineError as err:
            raise ServiceError(str(err)) from err
    service = assemble(
        engines,
        args.voice,
        cache=build_cache(args),
        max_concurrent=args.max_concurrent,
        chain=chain_settings(args, engines),
        settings=handler_settings(args),
        fallback_voices={**DEFAULT_FALLBACK_VOICES, **dict(args.fallback_voice)},
        provider=provider,
    )
    check_prerender_lists(args, service.catalogue)
    open_ledger(service, args.data_dir / LEDGER_FILE, args.render_queue_size)
    return service


def check_prerender_lists(args: argparse.Namespace, catalogue: VoiceCatalogue) -> None:
    texts = 0
    for listed in args.prerender:
        if listed.voice is not None and catalogue.find(listed.voice) is None:
            raise ServiceError(f"--prerender: no voice named {listed.voice!r}")
        try:
            texts += len(listed.texts())
        except (OSError, UnicodeDecodeError) as err:
            raise ServiceError(f"--prerender: cannot read {listed.path}: {err}") from err
    if texts > args.prerender_max_texts:
        raise ServiceError(f"--prerender: the lists hold {texts} texts, more than --prerender-max-texts {args.prerender_max_texts}")


def open_ledger(service: Service, path: Path, queue_size: int) -> None:
    """The counts of who spoke, and the render queue (unless its size is 0 or there is no
    cache to render into), kept in `path`."""
    try:
        ledger = Ledger(path)
    except LedgerError as err:
        raise ServiceError(str(err)) from err
    synthesizer = service.synthesizer
    synthesizer.heard = HeardCounts(ledger)
    if queue_size > 0 and synthesizer.cache is not None:
        synthesizer.queue = RenderQueue(ledger, queue_size)


def handler_settings(args: argparse.Namespace) -> HandlerSettings:
    return HandlerSettings(
        samples_per_chunk=args.samples_per_chunk,
        splitter=SplitterSettings(first_clause_weight=args.first_clause_chars, max_unit_weight=args.max_sentence_chars),
    )


def remote_names(args: argparse.Namespace) -> list[str]:
    return ["remote" if index == 0 else f"remote{index + 1}" for index in range(len(args.remote))]


def load_engines(args: argparse.Namespace) -> dict[str, Engine]:
    piper_options = PiperOptions(length_scale=args.length_scale, noise_scale=args.noise_scale, noise_w_scale=args.noise_w_scale)
    engines: dict[str, Engine] = {PIPER: PiperEngine.load(options=piper_options)}
    # Imported here: jieba, misaki and wetext take seconds to import, which `--version` and a
    # bad argument should not wait for.
    from .engines.kokoro import KokoroEngine

    try:
        engines[KOKORO] = KokoroEngine.load()
    except EngineError as err:
        # The server still speaks English; Chinese text then gets an error naming the language.
        _LOGGER.error("The bundled Mandarin voices are off: %s", err)
    if args.indextts_model_dir is not None:
        indextts = load_indextts(args)
        if indextts is not None:
            engines[INDEXTTS] = indextts
    try:
        sambert_settings = SambertSettings.from_env(os.environ, args.sambert_credentials)
    except ValueError as err:
        raise ServiceError(str(err)) from err
    if sambert_settings is not None:
        sambert = SambertEngine(sambert_settings)
        try:
            sambert.warm_up()
        except EngineError as err:
            # Still chained: the cloud may be back by the time a sentence needs it.
            _LOGGER.warning("Sambert is configured but not reachable yet: %s", err)
        engines[SAMBERT] = sambert
    # Remotes first: a voice both have is asked of the remote, the local copy next.
    return {**load_remotes(args), **engines}


def load_remotes(args: argparse.Namespace) -> dict[str, Engine]:
    remotes: dict[str, Engine] = {}
    for name, uri in zip(remote_names(args), args.remote):
        host, port = parse_remote_uri(uri)
        remote = RemoteEngine(uri, name, voices_file=args.data_dir / "remotes" / f"{host}_{port}.json")
        if not remote.start():
            _LOGGER.warning("Remote %s (%s) does not answer yet; its voices appear when it does", name, uri)
        remotes[name] = remote
    return remotes


def load_indextts(args: argparse.Namespace) -> IndexTTSEngine | None:
    """A bad model folder stops start-up (the message names the file); a voices folder with no
    usable clip only leaves IndexTTS out, since the bundled voice can still serve the house."""
    try:
        options = IndexTTSOptions(
            diffusion_steps=args.indextts_diffusion_steps,
            cfg_rate=args.indextts_cfg_rate,
            seed=args.indextts_seed,
            emotion=args.indextts_emotion,
            emotion_strength=args.indextts_emotion_strength,
            speed=args.indextts_speed,
            int8=args.indextts_int8,
            speculative=args.indextts_speculative,
        )
    except ValueError as err:
        raise ServiceError(str(err)) from err
    if not args.voices_dir.is_dir():
        raise ServiceError(f"--voices-dir {args.voices_dir} is not a folder: create it and put NAME.wav clips in it")
    try:
        # With the web page a user can upload the first voice, so an empty folder is no error.
        return IndexTTSEngine.load(
            args.indextts_model_dir, args.voices_dir, args.data_dir / "indextts-voices", options, allow_empty=bool(args.http_uri)
        )
    except ModelError as err:
        raise ServiceError(str(err)) from err
    except EngineError as err:
        _LOGGER.warning("IndexTTS voices are off: %s", err)
        return None


def chain_settings(args: argparse.Namespace, engines: Mapping[str, Engine]) -> ChainSettings:
    fallbacks = [name.strip() for name in args.fallback.split(",") if name.strip()]
    known = {INDEXTTS, SAMBERT, KOKORO, PIPER, *remote_names(args)}
    unknown = [name for name in fallbacks if name not in known]
    if unknown:
        raise ServiceError(f"--fallback: unknown engine {unknown[0]!r}; choose from {', '.join(sorted(known))}")
    deadlines = {engine: seconds for engine, seconds in args.deadline if engine is not None}
    overall = [seconds for engine, seconds in args.deadline if engine is None]
    for engine in deadlines:
        if engine not in known:
            raise ServiceError(f"--deadline: unknown engine {engine!r}; choose from {', '.join(sorted(known))}")
    return ChainSettings(
        fallbacks=[name for name in fallbacks if name in engines],
        default_deadline=overall[-1] if overall else ChainSettings.default_deadline,
        deadlines=deadlines,
        sentence_cap=args.sentence_cap,
        breaker_failures=args.breaker_failures,
        breaker_cooldown=args.breaker_cooldown,
        late_renders=args.late_renders,
    )


def build_cache(args: argparse.Namespace) -> AudioCache | None:
    if args.no_cache:
        return None
    if args.cache_redis:
        return AudioCache(args.cache_memory_mb * 1024 * 1024, shared_cache(args))
    disk = None
    if args.cache_disk_mb > 0:
        cache_dir = args.cache_dir or (args.data_dir / "cache")
        try:
            disk = DiskCache(cache_dir, args.cache_disk_mb * 1024 * 1024)
        except OSError as err:
            raise ServiceError(f"cannot use cache folder {cache_dir}: {err.strerror or err}") from err
    return AudioCache(args.cache_memory_mb * 1024 * 1024, disk)


def shared_cache(args: argparse.Namespace) -> RedisCache:
    try:
        store = RedisCache(args.cache_redis)
    except ImportError as err:
        raise ServiceError("--cache-redis needs the redis client: pip install 'wyoming-indextts[redis]'") from err
    except ValueError as err:
        raise ServiceError(f"--cache-redis: {err}") from err
    if store.check():
        _LOGGER.info("Shared cache on %s", args.cache_redis)
    else:
        # Still used: it is tried again every `retry` seconds, and renders go on meanwhile.
        _LOGGER.warning("Shared cache on %s does not answer yet", args.cache_redis)
    return store
