"""Command line: flags → settings → `service.build_service` → Wyoming server (+ zeroconf, HTTP).

Subcommands: `wyoming-indextts export ...` runs the ONNX exporter (needs the `[export]` extra),
`wyoming-indextts check ...` measures the IndexTTS fast paths on a voice (`check.py`),
`wyoming-indextts prerender ...` renders announcements into the cache and exits,
`wyoming-indextts setup ...` downloads the official model files and exports them
(`export/setup_cli.py`). A new one is a line in SUBCOMMANDS.
"""

from __future__ import annotations

import argparse
import ipaddress
import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from wyoming.server import AsyncServer, AsyncTcpServer

from . import __version__
from .discovery import advertised_address, is_ipv4_address
from .engines.indextts import EMOTIONS, IndexTTSOptions
from .engines.piper import BUNDLED_VOICE
from .engines.sambert import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_APPKEY
from .engines.sessions import PROVIDERS
from .flag_types import (
    deadline,
    emotion,
    key_value,
    non_negative_int,
    positive_float,
    positive_int,
    prerender_list,
    redis_url,
    remote_uri,
)
from .homeassistant.names import ENV_TOKEN as ENV_HA_TOKEN
from .homeassistant.names import read_token, websocket_url
from .homeassistant.replies import DEFAULT_MAX_REPLIES
from .prerender import DEFAULT_MAX_TEXTS, EditedLists, Prerenderer, PrerenderList
from .render_queue import DEFAULT_BATCH, DEFAULT_CAPACITY, QueueRenderer
from .sentences import SplitterSettings
from .service import Service, ServiceError, build_service

if TYPE_CHECKING:  # the [http] extra is imported only when --http-uri asks for it
    from .homeassistant.ahead import RepliesAhead
    from .http import HttpAddress, HttpServer

_LOGGER = logging.getLogger(__name__)

ENV_ARGS = "WYOMING_INDEXTTS_ARGS"
ENV_HTTP_TOKEN = "WYOMING_INDEXTTS_HTTP_TOKEN"
"""--http-token from the environment: a command line is readable by every user (ps)."""
URI_SCHEMES = ("tcp://", "unix://", "stdio://")
STOP_WAIT = 5.0
"""Seconds a stop waits for the renders it cancelled to end: Docker, and Home Assistant's
add-ons with it, kill a container 10 s after SIGTERM."""


class OneLineParser(argparse.ArgumentParser):
    """A bad value is one line on stderr and exit code 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "wyoming-indextts"


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="wyoming-indextts",
        description="Wyoming TTS server: IndexTTS2 voices with cache and fallback chain",
        epilog=f"Flags can also come from the environment variable {ENV_ARGS} (e.g. {ENV_ARGS}='--voice grandma "
        "--deadline 8'); a flag given on the command line wins over the same flag there. "
        "`wyoming-indextts export --help`: turn official IndexTTS2 checkpoints into the ONNX model folder "
        "(needs the [export] extra). `wyoming-indextts prerender [--voice NAME] FILE`: render announcements "
        "into the cache once and exit. `wyoming-indextts check --help`: measure each IndexTTS fast path against fp32 "
        "on your own voice. `wyoming-indextts setup --help`: download the official IndexTTS2 files and export them in one step.",
    )
    parser.add_argument("--uri", default="tcp://0.0.0.0:10200", help="tcp://HOST:PORT, unix://PATH or stdio:// (default: tcp://0.0.0.0:10200)")
    parser.add_argument("--voice", default=BUNDLED_VOICE, help=f"default voice when a request names none (default: {BUNDLED_VOICE})")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="where the cache and prepared voices live (default: %(default)s)")
    parser.add_argument("--zeroconf", nargs="?", const="indextts", help="announce the server over zeroconf (_wyoming._tcp) with an optional name (default: indextts)")
    parser.add_argument("--zeroconf-host", help="IPv4 address to announce (default: the --uri host, or for 0.0.0.0 the address of the interface that reaches the network)")

    cache = parser.add_argument_group("cache")
    cache.add_argument("--cache-dir", type=Path, help="disk cache folder (default: DATA_DIR/cache)")
    cache.add_argument("--cache-memory-mb", type=non_negative_int, default=64, help="in-memory cache size in MiB (default: 64)")
    cache.add_argument("--cache-disk-mb", type=non_negative_int, default=512, help="disk cache size in MiB (default: 512)")
    cache.add_argument("--cache-redis", type=redis_url, metavar="redis://HOST:PORT/DB", help="share the cache between instances on Redis or Valkey instead of the disk (needs the [redis] extra; memory cache still in front)")
    cache.add_argument("--no-cache", action="store_true", help="turn both cache levels off")

    speech = parser.add_argument_group("synthesis")
    speech.add_argument("--max-concurrent", type=positive_int, default=os.cpu_count() or 1, help="sentences rendered at once; the rest wait (default: number of cores)")
    speech.add_argument("--threads", type=non_negative_int, default=0, help="ONNX Runtime threads, one pool shared by every voice; 0: one per core (default)")
    speech.add_argument("--provider", choices=sorted(PROVIDERS), default="cpu", help="where ONNX Runtime runs every voice: cpu, cuda (needs onnxruntime-gpu) or openvino (Intel iGPU/NPU, needs onnxruntime-openvino); falls back to the CPU when missing (default: cpu)")
    speech.add_argument("--samples-per-chunk", type=positive_int, default=1024, help="samples per audio-chunk event (default: 1024)")
    speech.add_argument("--first-clause-chars", type=non_negative_int, default=SplitterSettings.first_clause_weight, help="send a response's first clause alone once it is this long, for faster first audio; CJK characters count 3; 0 turns it off (default: %(default)s)")
    speech.add_argument("--max-sentence-chars", type=positive_int, default=SplitterSettings.max_unit_weight, help="longer sentences are cut at a clause or a space (default: %(default)s)")
    speech.add_argument("--length-scale", type=positive_float, help="Piper: speaking pace, above 1 is slower")
    speech.add_argument("--noise-scale", type=float, help="Piper: generator noise")
    speech.add_argument("--noise-w-scale", type=float, help="Piper: phoneme width noise")

    clone = parser.add_argument_group("IndexTTS2 voices (your own voice from a clip)")
    clone.add_argument("--indextts-model-dir", type=Path, help="model folder written by `wyoming-indextts export`")
    clone.add_argument("--voices-dir", type=Path, help="folder of NAME.wav clips (+ optional NAME.yaml: description, languages)")
    clone.add_argument("--indextts-diffusion-steps", type=positive_int, default=IndexTTSOptions.diffusion_steps, help="flow-matching steps; fewer is faster, rougher (default: %(default)s)")
    clone.add_argument("--indextts-cfg-rate", type=float, default=IndexTTSOptions.cfg_rate, help="classifier-free guidance strength (default: %(default)s)")
    clone.add_argument("--indextts-seed", type=int, help="fixed seed: the same text always sounds the same")
    clone.add_argument("--indextts-emotion", type=emotion, metavar="W,W,W,W,W,W,W,W", help=f"8 emotion weights ({', '.join(EMOTIONS)}); default: the clip's own emotion")
    clone.add_argument("--indextts-emotion-strength", type=float, default=IndexTTSOptions.emotion_strength, help="how strongly --indextts-emotion applies, 0..1 (default: %(default)s)")
    clone.add_argument("--indextts-speed", type=float, default=IndexTTSOptions.speed, help="speech rate of an IndexTTS-2.5 model, 0.5..2 (1: its own pace; a voice's yaml speed wins; default: %(default)s)")
    clone.add_argument("--indextts-int8", action="store_true", help="use the int8 GPT and diffusion graphs (export with --int8): about 2x faster synthesis on CPUs with VNNI/AMX, slightly different audio")
    clone.add_argument("--indextts-speculative", type=non_negative_int, default=0, metavar="K", help="speculative GPT decoding: the int8 GPT (export with --int8) drafts K codes, the fp32 GPT keeps the ones it would have chosen; same output distribution, speed depends on how often int8 agrees (0: off; default: %(default)s)")

    chain = parser.add_argument_group("fallback chain")
    chain.add_argument("--fallback", default="sambert,piper", help="engines tried after a voice's own, comma-separated; the bundled voices (kokoro for Mandarin, piper) always end the chain (default: sambert,piper; sambert only when configured)")
    chain.add_argument("--deadline", type=deadline, action="append", default=[], metavar="[ENGINE=]SECONDS", help="time to first audio before the next engine takes over; repeat for per-engine values (default: 2, so a satellite that gives up after 5 s hears the fallback in time)")
    chain.add_argument("--sentence-cap", type=positive_float, default=60.0, help="seconds an engine may take for a whole sentence (default: 60)")
    chain.add_argument("--breaker-failures", type=positive_int, default=3, help="consecutive failures that make the chain skip an engine (default: 3)")
    chain.add_argument("--breaker-cooldown", type=positive_float, default=30.0, help="seconds a failing engine is skipped before one trial request (default: 30)")
    chain.add_argument("--late-renders", type=non_negative_int, default=2, help="timed-out renders allowed to finish in the background for the cache (default: 2)")
    chain.add_argument("--render-queue-size", type=non_negative_int, default=DEFAULT_CAPACITY, help="sentences a fallback spoke for a cloned voice kept on disk (in the data folder) until the cloned voice has rendered them, most asked first; 0: off (default: %(default)s)")
    chain.add_argument("--render-batch", type=positive_int, default=DEFAULT_BATCH, help="sentences of one voice rendered together by the render queue and the pre-renders (batched GPT decoding; default: %(default)s)")
    chain.add_argument("--fallback-voice", type=key_value, action="append", default=[], metavar="LANG=VOICE", help="voice a fallback engine uses for a language, e.g. zh=sambert-zhichu")
    chain.add_argument("--remote", type=remote_uri, action="append", default=[], metavar="tcp://HOST:PORT", help="another Wyoming TTS server (e.g. this one on a GPU machine) that speaks its voices first, the local chain as fallback; repeatable, engines named remote, remote2, ...")
    chain.add_argument("--sambert-credentials", type=Path, help=f"file with {ENV_ACCESS_KEY_ID}, {ENV_ACCESS_KEY_SECRET} and {ENV_APPKEY} (KEY=VALUE lines or JSON); the environment variables of the same names work too")

    parser.add_argument("--prerender", type=prerender_list, action="append", default=[], metavar="[VOICE=]FILE", help="texts (one a line) to render in idle time into the cache, pinned there, in VOICE (default: --voice); repeatable")
    parser.add_argument("--prerender-max-texts", type=positive_int, default=DEFAULT_MAX_TEXTS, help="texts the pre-render lists (--prerender files and the web page's) may hold together (default: %(default)s)")

    assist = parser.add_argument_group("Home Assistant's replies rendered ahead")
    assist.add_argument("--ha-url", metavar="URL", help="Home Assistant (e.g. http://homeassistant.local:8123; the add-on: http://supervisor/core): its Assist replies, filled with this house's names, are rendered in idle time into the cache, pinned, after the --prerender lists (default: off)")
    assist.add_argument("--ha-token-file", type=Path, metavar="PATH", help=f"file holding a long-lived access token for --ha-url (or the environment variable {ENV_HA_TOKEN}; never on the command line)")
    # Without this, argparse would take `--ha-token X` for `--ha-token-file X`.
    assist.add_argument("--ha-token", action=RefuseSecret, help=argparse.SUPPRESS)
    assist.add_argument("--ha-voice", action="append", default=[], metavar="VOICE", help="voice to render the replies in, in each language it speaks; repeatable (default: --voice)")
    assist.add_argument("--ha-replies-max", type=positive_int, default=DEFAULT_MAX_REPLIES, help="most replies rendered per voice, most likely first (default: %(default)s)")

    web = parser.add_argument_group("HTTP API and web page (needs the [http] extra)")
    web.add_argument("--http-uri", help="also serve the HTTP API (/tts, OpenAI's /v1/audio/speech) and the web page on http://HOST:PORT (default: off)")
    web.add_argument("--http-max-upload-mb", type=positive_int, default=20, help="largest voice clip upload in MiB (default: 20)")
    web.add_argument("--http-token", help=f"token (Authorization: Bearer) for requests that change anything, and for every request when --http-uri is not a loopback address (or the environment variable {ENV_HTTP_TOKEN})")
    web.add_argument("--http-token-file", type=Path, metavar="PATH", help="read the token from this file instead; the page then shows it once to a --http-trusted-peer (the add-on's administrators) and can replace it with a new one there")
    web.add_argument("--http-trusted-peer", action="append", default=[], metavar="ADDRESS", help="requests from this address need no token: a proxy that has authenticated the user already, such as Home Assistant's ingress (172.30.32.2; the add-on sets it)")
    web.add_argument("--http-trusted-proxy", action="append", default=[], metavar="ADDRESS", help="a reverse proxy whose X-Forwarded-For header names the client (default: none; the client is the socket's address); repeatable")
    web.add_argument("--http-allowed-host", action="append", default=[], metavar="NAME", help="a Host name under which requests without the token are served, besides localhost, loopback addresses and the --http-uri host; repeatable")

    parser.add_argument("--debug", action="store_true", help="log DEBUG messages")
    parser.add_argument("--log-format", default=logging.BASIC_FORMAT, help="format for log messages")
    parser.add_argument("--version", action="version", version=__version__, help="print the version and exit")
    return parser


class RefuseSecret(argparse.Action):
    """A secret given on the command line (readable by every user, with ps): refused,
    without repeating it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object, option_string: str | None = None) -> None:
        parser.error(f"{option_string}: a token on the command line is readable by every user; use --ha-token-file PATH or {ENV_HA_TOKEN}")


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
    if args.http_token_file is not None:
        if args.http_token is not None:  # the page would show and rotate the file's, not this one
            parser.error("give --http-token or --http-token-file, not both")
        args.http_token = _token_from_file(parser, args.http_token_file)
    if args.http_token is None:
        args.http_token = environ.get(ENV_HTTP_TOKEN) or None
    for flag, addresses in (("--http-trusted-peer", args.http_trusted_peer), ("--http-trusted-proxy", args.http_trusted_proxy)):
        for address in addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                parser.error(f"{flag} must be an IP address, got {address!r}")
    args.http_address = _http_address(parser, args) if args.http_uri else None
    if args.ha_url is not None:
        try:
            websocket_url(args.ha_url)
            read_token(args.ha_token_file, environ)  # checked here, read again where used: never kept in args
        except ValueError as err:
            parser.error(f"--ha-url: {err}")
    args.parser = parser
    return args


def _token_from_file(parser: OneLineParser, path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        parser.error(f"--http-token-file: cannot read {str(path)!r}: {err}")
    if not token:
        parser.error(f"--http-token-file: {str(path)!r} is empty")
    return token


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


def build_or_exit(args: argparse.Namespace) -> Service:
    try:
        return build_service(args)
    except ServiceError as err:
        args.parser.error(str(err))


async def main(argv: list[str]) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format=args.log_format)
    _LOGGER.debug(args)
    service = build_or_exit(args)
    try:
        await serve(args, service)
    except ServiceError as err:
        args.parser.error(str(err))
    finally:
        ending = sys.exc_info()[1]
        if not await service.stop(STOP_WAIT):
            code = 0 if ending is None else ending.code if isinstance(ending, SystemExit) else 1
            exit_leaving_renders(code)


def exit_leaving_renders(code: int) -> NoReturn:
    """Exit while a render thread is still inside ONNX Runtime (a long run cannot be cut
    short): the interpreter's normal exit would run ONNX Runtime's C++ destructors under that
    thread and abort ("terminate called without an active exception", exit 134). The cache
    is consistent already (entries are written whole or not at all, and the writes under way
    were awaited), so only the log is flushed before leaving without those destructors."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def serve(args: argparse.Namespace, service: Service) -> None:
    """Until SIGINT or SIGTERM: the Wyoming server, its zeroconf announcement, the HTTP API
    when asked for, and the pre-renders in idle time."""
    server = AsyncServer.from_uri(args.uri)
    if args.zeroconf:
        assert isinstance(server, AsyncTcpServer)
        await announce(args, server)

    # The page's lists live in the data folder, beside the cache, and are kept across restarts.
    edited = EditedLists(args.data_dir / "prerender") if args.http_address else None
    ahead = replies_ahead(args, service)
    prerenderer = Prerenderer(
        service.synthesizer, service.settings.splitter, args.prerender, edited, ahead, args.prerender_max_texts, batch=args.render_batch
    )
    names_task = watch_names(args, ahead, prerenderer) if ahead is not None else None
    queue = service.synthesizer.queue
    renderer = QueueRenderer(service.synthesizer, queue, args.render_batch) if queue is not None else None
    http_server = await start_http(args, service, prerenderer) if args.http_address else None
    voices = ", ".join(voice.name for voice in service.catalogue.voices())
    _LOGGER.info("Ready on %s; default voice %s; voices: %s; ONNX Runtime on %s", args.uri, args.voice, voices, PROVIDERS[service.provider])
    server_task = asyncio.create_task(server.run(service.handler_factory()))
    if args.prerender or (edited is not None and edited.lists()) or (ahead is not None and ahead.lists()):
        await prerenderer.refresh()
    if renderer is not None:
        renderer.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server_task.cancel)
    try:
        # SIGINT cancels the task; on SIGTERM the wyoming server's own handler (which replaces
        # ours) stops it and it returns: both end here, with the same line in the log.
        with contextlib.suppress(asyncio.CancelledError):
            await server_task
        _LOGGER.info("Server stopped")
        for signum in (signal.SIGINT, signal.SIGTERM):
            # The wyoming server removed its SIGTERM handler: a second signal while the renders
            # end must not kill the process half-way through its stop.
            loop.add_signal_handler(signum, _LOGGER.info, "Stopping already")
    finally:
        if names_task is not None:
            names_task.cancel()
        prerenderer.stop()
        if renderer is not None:
            await renderer.stop()
        if http_server is not None:
            await http_server.stop()


def replies_ahead(args: argparse.Namespace, service: Service) -> RepliesAhead | None:
    """Home Assistant's replies as pre-render lists, one per --ha-voice (default: --voice)."""
    if args.ha_url is None:
        return None
    from .homeassistant.ahead import RepliesAhead

    for name in args.ha_voice:
        if service.catalogue.find(name) is None:
            raise ServiceError(f"--ha-voice: no voice named {name!r}")
    voices: list[str | None] = list(args.ha_voice) or [None]
    return RepliesAhead(service.synthesizer, service.settings.splitter, args.data_dir / "homeassistant", voices, args.ha_replies_max)


def watch_names(args: argparse.Namespace, ahead: RepliesAhead, prerenderer: Prerenderer) -> asyncio.Task[None]:
    """Fetch the house's names from Home Assistant and keep them current in the background;
    each new set re-renders the replies."""
    from .homeassistant.names import NameWatcher

    try:
        token = read_token(args.ha_token_file, os.environ)
    except ValueError as err:
        raise ServiceError(f"--ha-url: {err}") from err
    ahead.on_change = prerenderer.refresh
    _LOGGER.info("Rendering Home Assistant's replies ahead: names from %s", websocket_url(args.ha_url))
    return asyncio.create_task(NameWatcher(args.ha_url, token, ahead.update).run())


async def announce(args: argparse.Namespace, server: AsyncTcpServer) -> None:
    from wyoming.zeroconf import HomeAssistantZeroconf

    try:
        address = advertised_address(server.host, args.zeroconf_host)
    except LookupError as err:
        raise ServiceError(str(err)) from err
    zeroconf = HomeAssistantZeroconf(name=args.zeroconf, port=server.port, host=address)
    await zeroconf.register_server()
    _LOGGER.info("Announced over zeroconf as %s at %s:%s", args.zeroconf, address, server.port)


async def start_http(args: argparse.Namespace, service: Service, prerenderer: Prerenderer) -> HttpServer:
    from .http import HttpSettings
    from .http.library import UploadLimits

    http_settings = HttpSettings(
        token=args.http_token,
        token_file=args.http_token_file,
        protect_reads=not args.http_address.loopback,
        trusted_peers=frozenset(args.http_trusted_peer),
        trusted_proxies=frozenset(args.http_trusted_proxy),
        allowed_hosts=frozenset({*args.http_allowed_host, args.http_address.host}),
        max_text_bytes=service.settings.limits.max_event_bytes,
        splitter=service.settings.splitter,
    )
    library = service.voice_library(UploadLimits(max_bytes=args.http_max_upload_mb << 20))
    server = await service.start_http(args.http_address, http_settings, library, prerenderer)
    _LOGGER.info("HTTP API and web page on %s", args.http_uri)
    return server


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
    service = build_or_exit(args)
    try:
        prerenderer = Prerenderer(service.synthesizer, service.settings.splitter, max_texts=args.prerender_max_texts, batch=args.render_batch)
        progress = await prerenderer.run(args.prerender)
    finally:
        ending = sys.exc_info()[1]
        if not await service.stop(STOP_WAIT):
            exit_leaving_renders(0 if ending is None else 1)
    return 1 if progress.failed else 0


def _export(argv: list[str]) -> int:
    from .export.cli import main as export_main

    return export_main(argv)


def _check(argv: list[str]) -> int:
    from .check import main as check_main

    return check_main(argv)


def _setup(argv: list[str]) -> int:
    from .export.setup_cli import main as setup_main

    return setup_main(argv)


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "export": _export,
    "prerender": lambda argv: asyncio.run(prerender_main(argv)),
    "check": _check,
    "setup": _setup,
}
"""`wyoming-indextts NAME ...` → its entry point (imported lazily: the server needs none of them)."""


def run() -> None:
    argv = sys.argv[1:]
    if argv[:1] and argv[0] in SUBCOMMANDS:
        sys.exit(SUBCOMMANDS[argv[0]](argv[1:]))
    asyncio.run(main(argv))


if __name__ == "__main__":
    run()
