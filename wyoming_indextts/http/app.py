"""The HTTP API: the seed's `/tts`, OpenAI's `/v1/audio/speech`, the voice list, health and
metrics. Protocol only, like the Wyoming handler: speaking goes through the shared synthesizer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..handler import HandlerSettings
from ..sentences import SplitterSettings
from ..synthesizer import Synthesizer
from ..voices import VoiceCatalogue
from .errors import ApiError, install_error_handlers
from .formats import FORMATS, OPENAI_PCM_RATE, OutputFormat
from .guard import AccessPolicy, BodyLimit, RequestCounter, TokenGuard
from .metrics import Metrics
from .speech import speech_response

FormatName = Literal["wav", "pcm", "flac", "mp3", "opus", "aac"]


@dataclass
class HttpSettings:
    token: str | None = None
    protect_reads: bool = False
    """True when listening beyond loopback: then every API request needs the token."""
    max_text_bytes: int = HandlerSettings.max_event_bytes
    """A speech request's body: the same limit as one Wyoming event."""
    splitter: SplitterSettings = field(default_factory=SplitterSettings)


class TtsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="What to say; split into sentences as Wyoming does")
    voice: str | None = Field(None, description="A voice name from /v1/voices; none or unknown: the default voice")
    format: FormatName = Field("wav", description="wav and pcm stream as sentences render; pcm is at the voice's rate")


class SpeechRequest(BaseModel):
    """OpenAI's request body; unknown fields are ignored as OpenAI-compatible servers do."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field("indextts", description="Accepted and ignored: the voice decides the engine")
    input: str
    voice: str | None = None
    response_format: FormatName = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"


@dataclass
class ServerParts:
    catalogue: VoiceCatalogue
    synthesizer: Synthesizer
    settings: HttpSettings
    metrics: Metrics


def create_app(catalogue: VoiceCatalogue, synthesizer: Synthesizer, settings: HttpSettings) -> FastAPI:
    app = FastAPI(title="wyoming-indextts", version=__version__, docs_url="/docs", redoc_url=None)
    parts = ServerParts(catalogue, synthesizer, settings, Metrics(synthesizer))
    app.state.parts = parts
    install_error_handlers(app)
    _add_speech_routes(app, parts)
    _add_info_routes(app, parts)
    policy = AccessPolicy(settings.token, settings.protect_reads, public_paths=lambda path: path == "/")
    app.add_middleware(BodyLimit, limit_for=lambda _method, _path: settings.max_text_bytes)
    app.add_middleware(TokenGuard, policy=policy)
    app.add_middleware(RequestCounter, metrics=parts.metrics)
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
        """OpenAI's text-to-speech endpoint. `pcm` is 24 kHz 16-bit mono, as OpenAI's."""
        if request.speed != 1.0:
            raise ApiError(
                400,
                "speed other than 1.0 is not supported per request; the bundled voice's pace is set with --length-scale",
                "unsupported_speed",
            )
        if request.stream_format != "audio":
            raise ApiError(400, "stream_format 'sse' is not supported; use 'audio'", "unsupported_stream_format")
        _check_text_size(request.input, settings)
        voice = _voice(parts, request.voice)
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


def _voice(parts: ServerParts, name: str | None):  # noqa: ANN202 - Voice, resolved like Wyoming's
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
        }

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 when the default voice can speak; 503 otherwise, with the reason."""
        synthesizer = parts.synthesizer
        engines = {
            name: {"voices": len(engine.voices()), "breaker": synthesizer.breakers[name].state.value}
            for name, engine in parts.catalogue.engines.items()
        }
        body: dict = {"status": "ready", "engines": engines, "cache": _cache_status(synthesizer)}
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
