"""The HTTP API: the seed's `/tts`, OpenAI's `/v1/audio/speech`, the voice list, health and
metrics. Protocol only, like the Wyoming handler: speaking goes through the shared synthesizer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, Form, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from .. import __version__
from ..engines.base import SPEED_ENGINES, Voice, at_speed
from ..homeassistant.ahead import RepliesAhead
from ..prerender import EditedLists, Prerenderer, PrerenderListFull
from ..protocol import ReaderLimits
from ..sentences import SplitterSettings, has_speakable
from ..synthesizer import Synthesizer
from ..voices import VoiceCatalogue
from .errors import LONE_SURROGATE_ERROR, ApiError, install_error_handlers
from .formats import FORMATS, OPENAI_PCM_RATE, OutputFormat
from .guard import AccessGuard, AccessPolicy, BodyLimit, RequestCounter
from .heard_status import heard_status, queue_status
from .library import VoiceLibrary
from .metrics import Metrics
from .speech import NOTHING_TO_SAY, speech_response
from .token_admin import add_token_routes

PAGE_DIR = Path(__file__).parent / "page"
PAGE_FILES = {"app.js": "text/javascript", "token.js": "text/javascript", "style.css": "text/css"}
UPLOAD_FORM_BYTES = 64 << 10
"""Room for an upload's name, description and multipart framing beside the clip."""

FormatName = Literal["wav", "pcm", "flac", "mp3", "opus", "aac"]


def _valid_unicode(value: str) -> str:
    """JSON's \\ud800 escape gives a string no UTF-8 can hold: refused here (a 400, see
    errors.py), not when the text is first encoded deep inside."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise PydanticCustomError(LONE_SURROGATE_ERROR, f"holds a lone surrogate at character {err.start}") from None
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]


@dataclass
class HttpSettings:
    token: str | None = None
    token_file: Path | None = None
    """Where the token is kept (--http-token-file): the page can show it once and rotate it."""
    protect_reads: bool = False
    """True when listening beyond loopback: then every API request needs the token."""
    trusted_peers: frozenset[str] = frozenset()
    """Peer addresses whose requests need no token (Home Assistant's ingress proxy)."""
    trusted_proxies: frozenset[str] = frozenset()
    """Addresses whose X-Forwarded-For names the peer (--http-trusted-proxy); from any other
    address the peer is the socket's."""
    allowed_hosts: frozenset[str] = frozenset()
    """Host names a request without the token may use besides localhost and loopback
    addresses: the bind address, --http-allowed-host."""
    max_text_bytes: int = ReaderLimits.max_event_bytes
    """A speech request's body: the same limit as one Wyoming event."""
    splitter: SplitterSettings = field(default_factory=SplitterSettings)


class TtsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="What to say; split into sentences as Wyoming does")
    voice: Text | None = Field(None, description="A voice name from /v1/voices; none or unknown: the default voice")
    format: FormatName = Field("wav", description="wav and pcm stream as sentences render; pcm is at the voice's rate")


class SpeechRequest(BaseModel):
    """OpenAI's request body; unknown fields are ignored as OpenAI-compatible servers do."""

    model_config = ConfigDict(extra="ignore")

    model: Text = Field("indextts", description="Accepted and ignored: the voice decides the engine")
    input: Text
    voice: Text | None = None
    response_format: FormatName = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"


@dataclass
class ServerParts:
    catalogue: VoiceCatalogue
    synthesizer: Synthesizer
    settings: HttpSettings
    metrics: Metrics
    library: VoiceLibrary | None
    prerenderer: Prerenderer | None


def create_app(
    catalogue: VoiceCatalogue,
    synthesizer: Synthesizer,
    settings: HttpSettings,
    library: VoiceLibrary | None = None,
    prerenderer: Prerenderer | None = None,
) -> FastAPI:
    app = FastAPI(title="wyoming-indextts", version=__version__, docs_url="/docs", redoc_url=None)
    metrics = Metrics(synthesizer, library.counts if library is not None else None, prerenderer)
    parts = ServerParts(catalogue, synthesizer, settings, metrics, library, prerenderer)
    app.state.parts = parts
    install_error_handlers(app)
    _add_speech_routes(app, parts)
    _add_info_routes(app, parts)
    _add_library_routes(app, parts)
    _add_prerender_routes(app, parts)
    _add_page_routes(app)

    def limit_for(method: str, path: str) -> int:
        if method == "POST" and path == "/v1/voices" and library is not None:
            return library.limits.max_bytes + UPLOAD_FORM_BYTES
        return settings.max_text_bytes

    def public(path: str) -> bool:
        return path == "/" or path.removeprefix("/page/") in PAGE_FILES

    policy = AccessPolicy(
        settings.token,
        settings.protect_reads,
        public_paths=public,
        trusted_peers=settings.trusted_peers,
        allowed_hosts=frozenset(name.lower() for name in settings.allowed_hosts),
    )
    add_token_routes(app, policy, settings.token_file)
    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(AccessGuard, policy=policy)
    app.add_middleware(RequestCounter, metrics=parts.metrics, routes=app.router.routes)
    return app


def _format(name: str) -> OutputFormat:
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ApiError(400, f"response format {name!r} is not supported; use one of {', '.join(FORMATS)}", "unsupported_format")
    return fmt


def _check_text_size(text: str, settings: HttpSettings) -> None:
    if len(text.encode("utf-8")) > settings.max_text_bytes:
        raise ApiError(413, f"text is longer than {settings.max_text_bytes} bytes; send it in parts", "too_large")


def _add_speech_routes(app: FastAPI, parts: ServerParts) -> None:
    settings = parts.settings

    @app.post("/tts", response_class=Response, responses={200: {"content": {f.media_type: {} for f in FORMATS.values()}}})
    async def tts(request: TtsRequest) -> Response:
        """Text and voice in, audio out (WAV by default), streamed as sentences render."""
        _check_text_size(request.text, settings)
        voice = _voice(parts, request.voice)
        return await speech_response(
            parts.synthesizer, voice, request.text, _format(request.format), settings.splitter, parts.metrics, "tts"
        )

    @app.post("/v1/audio/speech", response_class=Response)
    async def openai_speech(request: SpeechRequest) -> Response:
        """OpenAI's text-to-speech endpoint. `pcm` is 24 kHz 16-bit mono, as OpenAI's. `speed`
        works for the bundled Piper and Kokoro voices."""
        if request.stream_format != "audio":
            raise ApiError(400, "stream_format 'sse' is not supported; use 'audio'", "unsupported_stream_format")
        _check_text_size(request.input, settings)
        voice = _voice(parts, request.voice)
        if request.speed != 1.0:
            if voice.engine not in SPEED_ENGINES:
                raise ApiError(
                    400,
                    f"voice {voice.name!r} ({voice.engine}) speaks at its own pace: speed other than 1.0 works only "
                    f"for {' and '.join(SPEED_ENGINES)} voices",
                    "unsupported_speed",
                )
            voice = at_speed(voice, request.speed)
        return await speech_response(
            parts.synthesizer,
            voice,
            request.input,
            _format(request.response_format),
            settings.splitter,
            parts.metrics,
            "openai",
            pcm_rate=OPENAI_PCM_RATE,
        )


def _voice(parts: ServerParts, name: str | None) -> Voice:
    """Resolved as Wyoming resolves it: none or an unknown name gives the default voice."""
    try:
        return parts.catalogue.resolve(name)
    except LookupError as err:
        raise ApiError(503, f"{err}; start the server with another --voice", "no_default_voice") from None


def _add_info_routes(app: FastAPI, parts: ServerParts) -> None:
    @app.get("/v1/voices")
    async def voices() -> dict:
        """Every voice, as Home Assistant sees them in `describe`."""
        default = parts.catalogue.default_voice_name
        return {
            "default": default,
            "voices": [
                {
                    "name": voice.name,
                    "engine": voice.engine,
                    "languages": list(voice.languages),
                    "description": voice.description,
                    "sample_rate": voice.sample_rate,
                    "default": voice.name == default,
                }
                for voice in parts.catalogue.voices()
            ],
            "uploads": None if parts.library is None else [job.public() for job in parts.library.preparations.values()],
        }

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 when the default voice can speak; 503 otherwise, with the reason."""
        synthesizer = parts.synthesizer
        engines = {
            name: {"voices": len(engine.voices()), "breaker": synthesizer.breakers[name].state.value}
            for name, engine in parts.catalogue.engines.items()
        }
        body: dict = {
            "status": "ready",
            "engines": engines,
            "cache": _cache_status(synthesizer),
            "prerender": None if parts.prerenderer is None else _prerender_status(parts.prerenderer),
            "homeassistant_replies": (
                await parts.prerenderer.extra.status()
                if parts.prerenderer is not None and isinstance(parts.prerenderer.extra, RepliesAhead)
                else None
            ),
            "render_queue": await asyncio.to_thread(queue_status, synthesizer),
            "heard": await asyncio.to_thread(heard_status, synthesizer),
        }
        try:
            default = parts.catalogue.default_voice
        except LookupError as err:
            body.update(status="unavailable", reason=str(err))
            return JSONResponse(body, status_code=503)
        chain = synthesizer.chain(default)
        if not any(synthesizer.breakers[engine.name].state.value != "open" for engine, _ in chain):
            body.update(status="unavailable", reason="every engine of the default voice's chain is failing")
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format."""
        # The disk cache's size is a folder scan: off the event loop.
        text = await asyncio.to_thread(generate_latest, parts.metrics.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)


def _add_library_routes(app: FastAPI, parts: ServerParts) -> None:
    def library() -> VoiceLibrary:
        if parts.library is None:
            raise ApiError(
                409,
                "voice uploads need IndexTTS: start the server with --indextts-model-dir and --voices-dir",
                "uploads_off",
            )
        return parts.library

    @app.post("/v1/voices", status_code=202)
    async def upload_voice(
        name: str = Form(..., description="1-48 letters, digits, '-' or '_'"),
        file: UploadFile = Form(..., description="WAV, FLAC, OGG or MP3; 3-15 s of one speaker"),
        description: str = Form(""),
        languages: str = Form("zh, en", description="comma-separated language codes"),
    ) -> dict:
        """Add a voice from a clip: checked, trimmed, resampled and stored now; prepared in the
        background (poll /v1/voices/NAME/preparation)."""
        job = await library().add(name, description, languages, file.file)
        return job.public()

    @app.get("/v1/voices/{name}/preparation")
    async def preparation(name: str) -> dict:
        job = library().preparations.get(name)
        if job is None:
            raise ApiError(404, f"no upload named {name!r} since the server started", "no_such_upload")
        return job.public()

    @app.delete("/v1/voices/{name}")
    async def delete_voice(name: str) -> dict:
        """Remove a voice of the voices folder (its clip and settings)."""
        await library().delete(name)
        return {"deleted": name}


class PrerenderEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voice: Text = Field(description="A voice name from /v1/voices")
    text: Text = Field(min_length=1, max_length=2000, description="One announcement")


def _add_prerender_routes(app: FastAPI, parts: ServerParts) -> None:
    def edited() -> EditedLists:
        if parts.prerenderer is None or parts.prerenderer.edited is None:
            raise ApiError(409, "pre-render lists are edited only on a server started with --http-uri", "prerender_off")
        return parts.prerenderer.edited

    def texts() -> dict:
        assert parts.prerenderer is not None
        return {"lists": edited().texts(), "progress": _prerender_status(parts.prerenderer)}

    @app.get("/v1/prerender")
    async def prerender_lists() -> dict:
        """The page's pre-render lists per voice (those of --prerender files are not shown)."""
        return await asyncio.to_thread(texts)

    @app.post("/v1/prerender")
    async def add_prerender(edit: PrerenderEdit) -> dict:
        """Add an announcement to a voice's list; it renders in the background."""
        text = " ".join(edit.text.split())
        if not has_speakable(text):
            raise ApiError(400, NOTHING_TO_SAY, "empty_text")
        if text.startswith("#"):  # the list format's comment mark
            raise ApiError(400, "an announcement cannot start with '#'", "bad_text")
        if parts.catalogue.find(edit.voice) is None:
            raise ApiError(404, f"no voice named {edit.voice!r}; see /v1/voices", "no_such_voice")
        edited()  # 409 without edited lists
        assert parts.prerenderer is not None
        try:
            await parts.prerenderer.add(edit.voice, text)  # renders only what is new
        except PrerenderListFull as err:
            raise ApiError(409, str(err), "prerender_full") from None
        return await asyncio.to_thread(texts)

    @app.post("/v1/prerender/remove")
    async def remove_prerender(edit: PrerenderEdit) -> dict:
        """Take an announcement off a voice's list (its audio stays in the cache, no longer pinned)."""
        edited()  # 409 without edited lists
        assert parts.prerenderer is not None
        if not await parts.prerenderer.remove(edit.voice, edit.text):
            raise ApiError(404, f"{edit.text!r} is not on the list of {edit.voice!r}", "not_listed")
        return await asyncio.to_thread(texts)


def _add_page_routes(app: FastAPI) -> None:
    # Relative links only, so the page works behind Home Assistant's ingress prefix too.
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE_DIR / "index.html", media_type="text/html", headers=_PAGE_HEADERS)

    @app.get("/page/{file}", include_in_schema=False)
    async def page_file(file: str) -> FileResponse:
        if file not in PAGE_FILES:
            raise ApiError(404, f"no page file {file!r}", "not_found")
        return FileResponse(PAGE_DIR / file, media_type=PAGE_FILES[file], headers=_PAGE_HEADERS)


_PAGE_HEADERS = {
    # The page runs only its own script and shows user text as text (see app.js).
    "Content-Security-Policy": "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _cache_status(synthesizer: Synthesizer) -> dict:
    cache = synthesizer.cache
    if cache is None:
        return {"enabled": False}
    stats = cache.stats
    lookups = stats.memory_hits + stats.disk_hits + stats.misses
    return {
        "enabled": True,
        "memory_bytes": cache.memory_bytes(),
        "memory_hits": stats.memory_hits,
        "disk_hits": stats.disk_hits,
        "misses": stats.misses,
        "hit_rate": round((stats.memory_hits + stats.disk_hits) / lookups, 4) if lookups else None,
    }


def _prerender_status(prerenderer: Prerenderer) -> dict:
    progress = prerenderer.progress
    return {
        "total": progress.total,
        "done": progress.done,
        "cached": progress.cached,
        "rendered": progress.rendered,
        "failed": progress.failed,
    }
