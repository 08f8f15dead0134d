"""Command line: settings → engines, voices, cache → Wyoming server (+ zeroconf).

`wyoming-indextts export ...` runs the ONNX exporter instead (needs the `[export]` extra);
`wyoming-indextts check ...` measures the IndexTTS fast paths on a voice (`check.py`);
`wyoming-indextts prerender ...` renders announcements into the cache and exits.

Over 500 lines because it holds every flag's definition and check (one concern: turning a
command line into a running service); the option groups are the natural next split.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from wyoming.server import AsyncServer, AsyncTcpServer

from . import __version__
from .cache import AudioCache, DiskCache
from .discovery import advertised_address, is_ipv4_address
from .engines.base import Engine, EngineError
from .engines.indextts import EMOTIONS, IndexTTSEngine, IndexTTSOptions, ModelError
from .engines.piper import BUNDLED_VOICE, PiperEngine, PiperOptions
from .engines.remote import RemoteEngine, parse_remote_uri
from .engines.sessions import PROVIDERS, use_provider, use_shared_thread_pool
from .engines.sambert import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_APPKEY, SambertEngine, SambertSettings
from .handler import HandlerSettings, IndexTTSEventHandler
from .prerender import Prerenderer, PrerenderList
from .sentences import SplitterSettings
from .shared_cache import RedisCache
from .synthesizer import ChainSettings, Synthesizer
from .voices import VoiceCatalogue

if TYPE_CHECKING:  # the [http] extra is imported only when --http-uri asks for it
    from .http import HttpAddress, HttpServer

_LOGGER = logging.getLogger(__name__)

ENV_ARGS = "WYOMING_INDEXTTS_ARGS"
URI_SCHEMES = ("tcp://", "unix://", "stdio://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# English falls back to the bundled local voice (fast, no cloud); other languages ask the
# fallback engines for a voice of their own language. `--fallback-voice` overrides.
DEFAULT_FALLBACK_VOICES = {"en": BUNDLED_VOICE}


class OneLineParser(argparse.ArgumentParser):
    """A bad value is one line on stderr and exit code 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "wyoming-indextts"


def _whole_number(text: str) -> int:
    # argparse would name the converter ("invalid _positive_int value"): say what was expected.
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _emotion(text: str) -> tuple[float, ...]:
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {len(EMOTIONS)} comma-separated numbers, got {text!r}") from None
    if len(weights) != len(EMOTIONS) or any(w < 0 for w in weights):
        raise argparse.ArgumentTypeError(f"expected {len(EMOTIONS)} non-negative weights ({', '.join(EMOTIONS)}), got {text!r}")
    return weights


def _remote_uri(text: str) -> str:
    try:
        parse_remote_uri(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _redis_url(text: str) -> str:
    if not text.startswith(REDIS_SCHEMES):
        raise argparse.ArgumentTypeError(f"expected a URL starting with one of {', '.join(REDIS_SCHEMES)}, got {text!r}")
    return text


def remote_names(args: argparse.Namespace) -> list[str]:
    return ["remote" if index == 0 else f"remote{index + 1}" for index in range(len(args.remote))]


def _deadline(text: str) -> tuple[str | None, float]:
    """`10` sets every engine's deadline; `indextts=20` one engine's."""
    engine, sep, seconds = text.rpartition("=")
    return (engine.strip() if sep else None), _positive_float(seconds)


def _prerender_list(text: str) -> PrerenderList:
    """`FILE` for the default voice, `grandma=FILE` for one voice."""
    voice, sep, path = text.partition("=")
    if not sep:
        voice, path = "", text
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {path!r}")
    return PrerenderList(voice.strip() or None, Path(path))


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="wyoming-indextts",
        description="Wyoming TTS server: IndexTTS2 voices with cache and fallback chain",
        epilog=f"Flags can also come from the environment variable {ENV_ARGS} (e.g. {ENV_ARGS}='--voice grandma "
        "--deadline 8'); a flag given on the command line wins over the same flag there. "
        "`wyoming-indextts export --help`: turn official IndexTTS2 checkpoints into the ONNX model folder "
        "(needs the [export] extra). `wyoming-indextts prerender [--voice NAME] FILE`: render announcements "
        "into the cache once and exit. `wyoming-indextts check --help`: measure each IndexTTS fast path against fp32 "
        "on your own voice.",
    )
    parser.add_argument("--uri", default="tcp://0.0.0.0:10200", help="tcp://HOST:PORT, unix://PATH or stdio:// (default: tcp://0.0.0.0:10200)")
    parser.add_argument("--voice", default=BUNDLED_VOICE, help=f"default voice when a request names none (default: {BUNDLED_VOICE})")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="where the cache and prepared voices live (default: %(default)s)")
    parser.add_argument("--zeroconf", nargs="?", const="indextts", help="announce the server over zeroconf (_wyoming._tcp) with an optional name (default: indextts)")
    parser.add_argument("--zeroconf-host", help="IPv4 address to announce (default: the --uri host, or for 0.0.0.0 the address of the interface that reaches the network)")

    cache = parser.add_argument_group("cache")
    cache.add_argument("--cache-dir", type=Path, help="disk cache folder (default: DATA_DIR/cache)")
    cache.add_argument("--cache-memory-mb", type=_non_negative_int, default=64, help="in-memory cache size in MiB (default: 64)")
    cache.add_argument("--cache-disk-mb", type=_non_negative_int, default=512, help="disk cache size in MiB (default: 512)")
    cache.add_argument("--cache-redis", type=_redis_url, metavar="redis://HOST:PORT/DB", help="share the cache between instances on Redis or Valkey instead of the disk (needs the [redis] extra; memory cache still in front)")
    cache.add_argument("--no-cache", action="store_true", help="turn both cache levels off")

    speech = parser.add_argument_group("synthesis")
    speech.add_argument("--max-concurrent", type=_positive_int, default=os.cpu_count() or 1, help="sentences rendered at once; the rest wait (default: number of cores)")
    speech.add_argument("--threads", type=_non_negative_int, default=0, help="ONNX Runtime threads, one pool shared by every voice; 0: one per core (default)")
    speech.add_argument("--provider", choices=sorted(PROVIDERS), default="cpu", help="where ONNX Runtime runs every voice: cpu, cuda (needs onnxruntime-gpu) or openvino (Intel iGPU/NPU, needs onnxruntime-openvino); falls back to the CPU when missing (default: cpu)")
    speech.add_argument("--samples-per-chunk", type=_positive_int, default=1024, help="samples per audio-chunk event (default: 1024)")
    speech.add_argument("--first-clause-chars", type=_non_negative_int, default=SplitterSettings.first_clause_weight, help="send a response's first clause alone once it is this long, for faster first audio; CJK characters count 3; 0 turns it off (default: %(default)s)")
    speech.add_argument("--max-sentence-chars", type=_positive_int, default=SplitterSettings.max_unit_weight, help="longer sentences are cut at a clause or a space (default: %(default)s)")
    speech.add_argument("--length-scale", type=_positive_float, help="Piper: speaking pace, above 1 is slower")
    speech.add_argument("--noise-scale", type=float, help="Piper: generator noise")
    speech.add_argument("--noise-w-scale", type=float, help="Piper: phoneme width noise")

    clone = parser.add_argument_group("IndexTTS2 voices (your own voice from a clip)")
    clone.add_argument("--indextts-model-dir", type=Path, help="model folder written by `wyoming-indextts export`")
    clone.add_argument("--voices-dir", type=Path, help="folder of NAME.wav clips (+ optional NAME.yaml: description, languages)")
    clone.add_argument("--indextts-diffusion-steps", type=_positive_int, default=IndexTTSOptions.diffusion_steps, help="flow-matching steps; fewer is faster, rougher (default: %(default)s)")
    clone.add_argument("--indextts-cfg-rate", type=float, default=IndexTTSOptions.cfg_rate, help="classifier-free guidance strength (default: %(default)s)")
    clone.add_argument("--indextts-seed", type=int, help="fixed seed: the same text always sounds the same")
    clone.add_argument("--indextts-emotion", type=_emotion, metavar="W,W,W,W,W,W,W,W", help=f"8 emotion weights ({', '.join(EMOTIONS)}); default: the clip's own emotion")
    clone.add_argument("--indextts-emotion-strength", type=float, default=IndexTTSOptions.emotion_strength, help="how strongly --indextts-emotion applies, 0..1 (default: %(default)s)")
    clone.add_argument("--indextts-speed", type=float, default=IndexTTSOptions.speed, help="speech rate of an IndexTTS-2.5 model, 0.5..2 (1: its own pace; a voice's yaml speed wins; default: %(default)s)")
    clone.add_argument("--indextts-int8", action="store_true", help="use the int8 GPT and diffusion graphs (export with --int8): about 2x faster synthesis on CPUs with VNNI/AMX, slightly different audio")
    clone.add_argument("--indextts-speculative", type=_non_negative_int, default=0, metavar="K", help="speculative GPT decoding: the int8 GPT (export with --int8) drafts K codes, the fp32 GPT keeps the ones it would have chosen; same output distribution, speed depends on how often int8 agrees (0: off; default: %(default)s)")

    chain = parser.add_argument_group("fallback chain")
    chain.add_argument("--fallback", default="sambert,piper", help="engines tried after a voice's own, comma-separated; the bundled voices (kokoro for Mandarin, piper) always end the chain (default: sambert,piper; sambert only when configured)")
    chain.add_argument("--deadline", type=_deadline, action="append", default=[], metavar="[ENGINE=]SECONDS", help="time to first audio before the next engine takes over; repeat for per-engine values (default: 2, so a satellite that gives up after 5 s hears the fallback in time)")
    chain.add_argument("--sentence-cap", type=_positive_float, default=60.0, help="seconds an engine may take for a whole sentence (default: 60)")
    chain.add_argument("--breaker-failures", type=_positive_int, default=3, help="consecutive failures that make the chain skip an engine (default: 3)")
    chain.add_argument("--breaker-cooldown", type=_positive_float, default=30.0, help="seconds a failing engine is skipped before one trial request (default: 30)")
    chain.add_argument("--late-renders", type=_non_negative_int, default=2, help="timed-out renders allowed to finish in the background for the cache (default: 2)")
    chain.add_argument("--fallback-voice", type=_key_value, action="append", default=[], metavar="LANG=VOICE", help="voice a fallback engine uses for a language, e.g. zh=sambert-zhichu")
    chain.add_argument("--remote", type=_remote_uri, action="append", default=[], metavar="tcp://HOST:PORT", help="another Wyoming TTS server (e.g. this one on a GPU machine) that speaks its voices first, the local chain as fallback; repeatable, engines named remote, remote2, ...")
    chain.add_argument("--sambert-credentials", type=Path, help=f"file with {ENV_ACCESS_KEY_ID}, {ENV_ACCESS_KEY_SECRET} and {ENV_APPKEY} (KEY=VALUE lines or JSON); the environment variables of the same names work too")

    parser.add_argument("--prerender", type=_prerender_list, action="append", default=[], metavar="[VOICE=]FILE", help="texts (one a line) to render in idle time into the cache, pinned there, in VOICE (default: --voice); repeatable")

    web = parser.add_argument_group("HTTP API and web page (needs the [http] extra)")
    web.add_argument("--http-uri", help="also serve the HTTP API (/tts, OpenAI's /v1/audio/speech) and the web page on http://HOST:PORT (default: off)")
    web.add_argument("--http-max-upload-mb", type=_positive_int, default=20, help="largest voice clip upload in MiB (default: 20)")
    web.add_argument("--http-token", help="token (Authorization: Bearer) for requests that change anything, and for every request when --http-uri is not a loopback address")

    parser.add_argument("--debug", action="store_true", help="log DEBUG messages")
    parser.add_argument("--log-format", default=logging.BASIC_FORMAT, help="format for log messages")
    parser.add_argument("--version", action="version", version=__version__, help="print the version and exit")
    return parser


def env_arguments(value: str) -> list[str]:
    """Split WYOMING_INDEXTTS_ARGS like a shell would. `docker run --env-file` keeps the quotes
    of `NAME="--a 1 --b 2"` as part of the value (systemd and shells strip them), which leaves
    one quoted word: split that word again so the same file works everywhere."""
    words = shlex.split(value)
    if len(words) == 1 and words[0].startswith("-") and any(c.isspace() for c in words[0]):
        words = shlex.split(words[0])
    return words


def parse_args(
    argv: list[str], environ: dict[str, str] | os._Environ[str] = os.environ, parser: OneLineParser | None = None
) -> argparse.Namespace:
    parser = parser or build_parser()
    env_args = environ.get(ENV_ARGS)
    try:
        env_argv = env_arguments(env_args) if env_args else []
    except ValueError as err:
        parser.error(f"invalid {ENV_ARGS}: {err}")
    # The environment comes first so that the command line, parsed later, wins.
    args = parser.parse_args([*env_argv, *argv])
    if not args.uri.startswith(URI_SCHEMES):
        parser.error(f"--uri must start with one of {', '.join(URI_SCHEMES)}, got {args.uri!r}")
    if args.zeroconf and not args.uri.startswith("tcp://"):
        parser.error("--zeroconf needs a tcp:// --uri")
    if args.zeroconf_host is not None and not is_ipv4_address(args.zeroconf_host):
        parser.error(f"--zeroconf-host must be an IPv4 address, got {args.zeroconf_host!r}")
    if (args.indextts_model_dir is None) != (args.voices_dir is None):
        parser.error("IndexTTS voices need both --indextts-model-dir and --voices-dir")
    args.http_address = _http_address(parser, args) if args.http_uri else None
    args.parser = parser
    return args


def _http_address(parser: OneLineParser, args: argparse.Namespace) -> HttpAddress:
    try:
        from .http import parse_http_uri
    except ImportError as err:
        parser.error(f"--http-uri needs the http extra ({err.name} is missing): pip install 'wyoming-indextts[http]'")
    try:
        address = parse_http_uri(args.http_uri)
    except ValueError as err:
        parser.error(f"--http-uri: {err}")
    if not address.loopback and not args.http_token:
        parser.error(f"--http-uri {args.http_uri} listens beyond this machine: set --http-token so only you can use it")
    return address


def load_engines(args: argparse.Namespace) -> dict[str, Engine]:
    piper_options = PiperOptions(length_scale=args.length_scale, noise_scale=args.noise_scale, noise_w_scale=args.noise_w_scale)
    engines: dict[str, Engine] = {"piper": PiperEngine.load(options=piper_options)}
    # Imported here: jieba, misaki and wetext take seconds to import, which `--version` and a
    # bad argument should not wait for.
    from .engines.kokoro import KokoroEngine

    try:
        engines["kokoro"] = KokoroEngine.load()
    except EngineError as err:
        # The server still speaks English; Chinese text then gets an error naming the language.
        _LOGGER.error("The bundled Mandarin voices are off: %s", err)
    if args.indextts_model_dir is not None:
        indextts = load_indextts(args)
        if indextts is not None:
            engines["indextts"] = indextts
    try:
        sambert_settings = SambertSettings.from_env(os.environ, args.sambert_credentials)
    except ValueError as err:
        args.parser.error(str(err))
    if sambert_settings is not None:
        sambert = SambertEngine(sambert_settings)
        try:
            sambert.warm_up()
        except EngineError as err:
            # Still chained: the cloud may be back by the time a sentence needs it.
            _LOGGER.warning("Sambert is configured but not reachable yet: %s", err)
        engines["sambert"] = sambert
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
        args.parser.error(str(err))
    if not args.voices_dir.is_dir():
        args.parser.error(f"--voices-dir {args.voices_dir} is not a folder: create it and put NAME.wav clips in it")
    try:
        # With the web page a user can upload the first voice, so an empty folder is no error.
        return IndexTTSEngine.load(
            args.indextts_model_dir, args.voices_dir, args.data_dir / "indextts-voices", options, allow_empty=bool(args.http_uri)
        )
    except ModelError as err:
        args.parser.error(str(err))
    except EngineError as err:
        _LOGGER.warning("IndexTTS voices are off: %s", err)
        return None


def chain_settings(args: argparse.Namespace, engines: dict[str, Engine]) -> ChainSettings:
    fallbacks = [name.strip() for name in args.fallback.split(",") if name.strip()]
    known = {"indextts", "sambert", "kokoro", "piper", *remote_names(args)}
    unknown = [name for name in fallbacks if name not in known]
    if unknown:
        args.parser.error(f"--fallback: unknown engine {unknown[0]!r}; choose from {', '.join(sorted(known))}")
    deadlines = {engine: seconds for engine, seconds in args.deadline if engine is not None}
    overall = [seconds for engine, seconds in args.deadline if engine is None]
    for engine in deadlines:
        if engine not in known:
            args.parser.error(f"--deadline: unknown engine {engine!r}; choose from {', '.join(sorted(known))}")
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
            args.parser.error(f"cannot use cache folder {cache_dir}: {err.strerror or err}")
    return AudioCache(args.cache_memory_mb * 1024 * 1024, disk)


def shared_cache(args: argparse.Namespace) -> RedisCache:
    try:
        store = RedisCache(args.cache_redis)
    except ImportError:
        args.parser.error("--cache-redis needs the redis client: pip install 'wyoming-indextts[redis]'")
    except ValueError as err:
        args.parser.error(f"--cache-redis: {err}")
    if store.check():
        _LOGGER.info("Shared cache on %s", args.cache_redis)
    else:
        # Still used: it is tried again every `retry` seconds, and renders go on meanwhile.
        _LOGGER.warning("Shared cache on %s does not answer yet", args.cache_redis)
    return store


@dataclass
class Service:
    """Everything a server process runs on, built once from the command line."""

    engines: dict[str, Engine]
    catalogue: VoiceCatalogue
    synthesizer: Synthesizer
    settings: HandlerSettings
    provider: str
    """The ONNX Runtime execution provider in use (after any fallback to the CPU)."""

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()


def build_service(args: argparse.Namespace) -> Service:
    """Engines, voices, cache and chain; a problem the user can fix ends in a one-line error."""
    try:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        args.parser.error(f"cannot create data folder {args.data_dir}: {err.strerror or err}")

    use_shared_thread_pool(args.threads)
    provider = use_provider(args.provider)
    try:
        engines = load_engines(args)
    except EngineError as err:
        args.parser.error(str(err))
    try:
        fallback_voices = {**DEFAULT_FALLBACK_VOICES, **dict(args.fallback_voice)}
        catalogue = VoiceCatalogue(engines, args.voice, fallback_voices)
    except ValueError as err:
        args.parser.error(f"--voice: {err}")
    for listed in args.prerender:
        if listed.voice is not None and catalogue.find(listed.voice) is None:
            args.parser.error(f"--prerender: no voice named {listed.voice!r}")

    synthesizer = Synthesizer(catalogue, build_cache(args), args.max_concurrent, chain_settings(args, engines))
    settings = HandlerSettings(
        samples_per_chunk=args.samples_per_chunk,
        splitter=SplitterSettings(first_clause_weight=args.first_clause_chars, max_unit_weight=args.max_sentence_chars),
    )
    return Service(engines, catalogue, synthesizer, settings, provider)


async def main(argv: list[str]) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format=args.log_format)
    _LOGGER.debug(args)
    service = build_service(args)
    catalogue, synthesizer, settings, engines = service.catalogue, service.synthesizer, service.settings, service.engines

    server = AsyncServer.from_uri(args.uri)
    if args.zeroconf:
        assert isinstance(server, AsyncTcpServer)
        from wyoming.zeroconf import HomeAssistantZeroconf

        try:
            address = advertised_address(server.host, args.zeroconf_host)
        except LookupError as err:
            args.parser.error(str(err))
        zeroconf = HomeAssistantZeroconf(name=args.zeroconf, port=server.port, host=address)
        await zeroconf.register_server()
        _LOGGER.info("Announced over zeroconf as %s at %s:%s", args.zeroconf, address, server.port)

    http_server = await start_http(args, catalogue, synthesizer, settings) if args.http_address else None
    voices = ", ".join(voice.name for voice in catalogue.voices())
    _LOGGER.info("Ready on %s; default voice %s; voices: %s; ONNX Runtime on %s", args.uri, args.voice, voices, PROVIDERS[service.provider])
    server_task = asyncio.create_task(server.run(partial(IndexTTSEventHandler, catalogue, synthesizer, settings)))
    prerendering = (
        asyncio.create_task(Prerenderer(synthesizer, settings.splitter).run(args.prerender)) if args.prerender else None
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server_task.cancel)
    try:
        # SIGINT cancels the task; on SIGTERM the wyoming server's own handler (which replaces
        # ours) stops it and it returns: both end here, with the same line in the log.
        with contextlib.suppress(asyncio.CancelledError):
            await server_task
        _LOGGER.info("Server stopped")
    finally:
        if prerendering is not None:
            prerendering.cancel()
        if http_server is not None:
            await http_server.stop()
        await synthesizer.drain()
        service.close()


async def prerender_main(argv: list[str]) -> int:
    """`wyoming-indextts prerender [--voice NAME] [server flags] FILE...`: render the files'
    texts into the cache the server uses, then exit (1 when a text could not be spoken)."""
    parser = build_parser()
    parser.prog = "wyoming-indextts prerender"
    parser.add_argument("files", type=Path, nargs="+", metavar="FILE", help="texts to render, one a line")
    args = parse_args(argv, parser=parser)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format=args.log_format)
    for path in args.files:
        if not path.is_file():
            parser.error(f"no such file: {str(path)!r}")
    args.prerender = [PrerenderList(None, path) for path in args.files]
    service = build_service(args)
    try:
        progress = await Prerenderer(service.synthesizer, service.settings.splitter).run(args.prerender)
        await service.synthesizer.drain()
    finally:
        service.close()
    return 1 if progress.failed else 0


async def start_http(
    args: argparse.Namespace, catalogue: VoiceCatalogue, synthesizer: Synthesizer, settings: HandlerSettings
) -> HttpServer:
    """The HTTP API and page on the same loop, synthesizer and cache; uploads when IndexTTS is on."""
    from .http import HttpServer, HttpSettings, create_app
    from .http.library import UploadLimits, VoiceLibrary

    indextts = catalogue.engines.get("indextts")
    library = (
        VoiceLibrary(indextts, catalogue, UploadLimits(max_bytes=args.http_max_upload_mb << 20))
        if isinstance(indextts, IndexTTSEngine)
        else None
    )
    http_settings = HttpSettings(
        token=args.http_token,
        protect_reads=not args.http_address.loopback,
        max_text_bytes=settings.limits.max_event_bytes,
        splitter=settings.splitter,
    )
    server = HttpServer(create_app(catalogue, synthesizer, http_settings, library), args.http_address)
    try:
        await server.start()
    except OSError as err:
        args.parser.error(f"--http-uri: {err}")
    _LOGGER.info("HTTP API and web page on %s", args.http_uri)
    return server


def run() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["export"]:
        from .export.cli import main as export_main

        sys.exit(export_main(argv[1:]))
    if argv[:1] == ["prerender"]:
        sys.exit(asyncio.run(prerender_main(argv[1:])))
    if argv[:1] == ["check"]:
        from .check import main as check_main

        sys.exit(check_main(argv[1:]))
    asyncio.run(main(argv))


if __name__ == "__main__":
    run()
