"""Command line: settings → engines, voices, cache → Wyoming server (+ zeroconf).

`wyoming-indextts export ...` runs the ONNX exporter instead (needs the `[export]` extra);
`wyoming-indextts check ...` measures the IndexTTS fast paths on a voice (`check.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import signal
import sys
from functools import partial
from pathlib import Path
from typing import NoReturn

from wyoming.server import AsyncServer, AsyncTcpServer

from . import __version__
from .cache import AudioCache, DiskCache
from .engines.base import Engine, EngineError
from .engines.indextts import EMOTIONS, IndexTTSEngine, IndexTTSOptions, ModelError
from .engines.piper import BUNDLED_VOICE, PiperEngine, PiperOptions
from .engines.sessions import use_shared_thread_pool
from .engines.sambert import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_APPKEY, SambertEngine, SambertSettings
from .handler import HandlerSettings, IndexTTSEventHandler
from .sentences import SplitterSettings
from .synthesizer import ChainSettings, Synthesizer
from .voices import VoiceCatalogue

_LOGGER = logging.getLogger(__name__)

ENV_ARGS = "WYOMING_INDEXTTS_ARGS"
URI_SCHEMES = ("tcp://", "unix://", "stdio://")
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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
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


def _deadline(text: str) -> tuple[str | None, float]:
    """`10` sets every engine's deadline; `indextts=20` one engine's."""
    engine, sep, seconds = text.rpartition("=")
    return (engine.strip() if sep else None), _positive_float(seconds)


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="wyoming-indextts", description="Wyoming TTS server: IndexTTS2 voices with cache and fallback chain")
    parser.add_argument("--uri", default="tcp://0.0.0.0:10200", help="tcp://HOST:PORT, unix://PATH or stdio:// (default: tcp://0.0.0.0:10200)")
    parser.add_argument("--voice", default=BUNDLED_VOICE, help=f"default voice when a request names none (default: {BUNDLED_VOICE})")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="where the cache and prepared voices live (default: %(default)s)")
    parser.add_argument("--zeroconf", nargs="?", const="indextts", help="announce the server over zeroconf (_wyoming._tcp) with an optional name (default: indextts)")

    cache = parser.add_argument_group("cache")
    cache.add_argument("--cache-dir", type=Path, help="disk cache folder (default: DATA_DIR/cache)")
    cache.add_argument("--cache-memory-mb", type=_non_negative_int, default=64, help="in-memory cache size in MiB (default: 64)")
    cache.add_argument("--cache-disk-mb", type=_non_negative_int, default=512, help="disk cache size in MiB (default: 512)")
    cache.add_argument("--no-cache", action="store_true", help="turn both cache levels off")

    speech = parser.add_argument_group("synthesis")
    speech.add_argument("--max-concurrent", type=_positive_int, default=os.cpu_count() or 1, help="sentences rendered at once; the rest wait (default: number of cores)")
    speech.add_argument("--threads", type=_non_negative_int, default=0, help="ONNX Runtime threads, one pool shared by every voice; 0: one per core (default)")
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
    clone.add_argument("--indextts-int8", action="store_true", help="use the int8 GPT and diffusion graphs (export with --int8): about 2x faster synthesis on CPUs with VNNI/AMX, slightly different audio")
    clone.add_argument("--indextts-speculative", type=_non_negative_int, default=0, metavar="K", help="speculative GPT decoding: the int8 GPT (export with --int8) drafts K codes, the fp32 GPT keeps the ones it would have chosen; same output distribution, speed depends on how often int8 agrees (0: off; default: %(default)s)")

    chain = parser.add_argument_group("fallback chain")
    chain.add_argument("--fallback", default="sambert,piper", help="engines tried after a voice's own, comma-separated; piper always ends the chain (default: sambert,piper; sambert only when configured)")
    chain.add_argument("--deadline", type=_deadline, action="append", default=[], metavar="[ENGINE=]SECONDS", help="time to first audio before the next engine takes over; repeat for per-engine values (default: 10)")
    chain.add_argument("--sentence-cap", type=_positive_float, default=60.0, help="seconds an engine may take for a whole sentence (default: 60)")
    chain.add_argument("--breaker-failures", type=_positive_int, default=3, help="consecutive failures that make the chain skip an engine (default: 3)")
    chain.add_argument("--breaker-cooldown", type=_positive_float, default=30.0, help="seconds a failing engine is skipped before one trial request (default: 30)")
    chain.add_argument("--late-renders", type=_non_negative_int, default=2, help="timed-out renders allowed to finish in the background for the cache (default: 2)")
    chain.add_argument("--fallback-voice", type=_key_value, action="append", default=[], metavar="LANG=VOICE", help="voice a fallback engine uses for a language, e.g. zh=sambert-zhichu")
    chain.add_argument("--sambert-credentials", type=Path, help=f"file with {ENV_ACCESS_KEY_ID}, {ENV_ACCESS_KEY_SECRET} and {ENV_APPKEY} (KEY=VALUE lines or JSON); the environment variables of the same names work too")

    parser.add_argument("--debug", action="store_true", help="log DEBUG messages")
    parser.add_argument("--log-format", default=logging.BASIC_FORMAT, help="format for log messages")
    parser.add_argument("--version", action="version", version=__version__, help="print the version and exit")
    return parser


def parse_args(argv: list[str], environ: dict[str, str] | os._Environ[str] = os.environ) -> argparse.Namespace:
    parser = build_parser()
    argv = list(argv)
    env_args = environ.get(ENV_ARGS)
    if env_args:
        try:
            argv.extend(shlex.split(env_args))
        except ValueError as err:
            parser.error(f"invalid {ENV_ARGS}: {err}")
    args = parser.parse_args(argv)
    if not args.uri.startswith(URI_SCHEMES):
        parser.error(f"--uri must start with one of {', '.join(URI_SCHEMES)}, got {args.uri!r}")
    if args.zeroconf and not args.uri.startswith("tcp://"):
        parser.error("--zeroconf needs a tcp:// --uri")
    if (args.indextts_model_dir is None) != (args.voices_dir is None):
        parser.error("IndexTTS voices need both --indextts-model-dir and --voices-dir")
    args.parser = parser
    return args


def load_engines(args: argparse.Namespace) -> dict[str, Engine]:
    piper_options = PiperOptions(length_scale=args.length_scale, noise_scale=args.noise_scale, noise_w_scale=args.noise_w_scale)
    engines: dict[str, Engine] = {"piper": PiperEngine.load(options=piper_options)}
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
    return engines


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
            int8=args.indextts_int8,
            speculative=args.indextts_speculative,
        )
    except ValueError as err:
        args.parser.error(str(err))
    if not args.voices_dir.is_dir():
        args.parser.error(f"--voices-dir {args.voices_dir} is not a folder: create it and put NAME.wav clips in it")
    try:
        return IndexTTSEngine.load(args.indextts_model_dir, args.voices_dir, args.data_dir / "indextts-voices", options)
    except ModelError as err:
        args.parser.error(str(err))
    except EngineError as err:
        _LOGGER.warning("IndexTTS voices are off: %s", err)
        return None


def chain_settings(args: argparse.Namespace, engines: dict[str, Engine]) -> ChainSettings:
    fallbacks = [name.strip() for name in args.fallback.split(",") if name.strip()]
    known = {"indextts", "sambert", "piper"}
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
    disk = None
    if args.cache_disk_mb > 0:
        cache_dir = args.cache_dir or (args.data_dir / "cache")
        try:
            disk = DiskCache(cache_dir, args.cache_disk_mb * 1024 * 1024)
        except OSError as err:
            args.parser.error(f"cannot use cache folder {cache_dir}: {err.strerror or err}")
    return AudioCache(args.cache_memory_mb * 1024 * 1024, disk)


async def main(argv: list[str]) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format=args.log_format)
    _LOGGER.debug(args)

    try:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        args.parser.error(f"cannot create data folder {args.data_dir}: {err.strerror or err}")

    use_shared_thread_pool(args.threads)
    try:
        engines = load_engines(args)
    except EngineError as err:
        args.parser.error(str(err))
    try:
        fallback_voices = {**DEFAULT_FALLBACK_VOICES, **dict(args.fallback_voice)}
        catalogue = VoiceCatalogue(engines, args.voice, fallback_voices)
    except ValueError as err:
        args.parser.error(f"--voice: {err}")

    synthesizer = Synthesizer(catalogue, build_cache(args), args.max_concurrent, chain_settings(args, engines))
    settings = HandlerSettings(
        samples_per_chunk=args.samples_per_chunk,
        splitter=SplitterSettings(first_clause_weight=args.first_clause_chars, max_unit_weight=args.max_sentence_chars),
    )

    server = AsyncServer.from_uri(args.uri)
    if args.zeroconf:
        assert isinstance(server, AsyncTcpServer)
        from wyoming.zeroconf import HomeAssistantZeroconf

        zeroconf = HomeAssistantZeroconf(name=args.zeroconf, port=server.port, host=server.host)
        await zeroconf.register_server()
        _LOGGER.debug("Zeroconf discovery enabled as %s", args.zeroconf)

    voices = ", ".join(voice.name for voice in catalogue.voices())
    _LOGGER.info("Ready on %s; default voice %s; voices: %s", args.uri, args.voice, voices)
    server_task = asyncio.create_task(server.run(partial(IndexTTSEventHandler, catalogue, synthesizer, settings)))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server_task.cancel)
    try:
        await server_task
    except asyncio.CancelledError:
        _LOGGER.info("Server stopped")
    finally:
        await synthesizer.drain()
        for engine in engines.values():
            engine.close()


def run() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["export"]:
        from .export.cli import main as export_main

        sys.exit(export_main(argv[1:]))
    if argv[:1] == ["check"]:
        from .check import main as check_main

        sys.exit(check_main(argv[1:]))
    asyncio.run(main(argv))


if __name__ == "__main__":
    run()
