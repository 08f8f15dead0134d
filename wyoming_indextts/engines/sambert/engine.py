"""The RESTful gateway (`/stream/v1/tts`) as an Engine: POST with a JSON body, PCM streamed back
as it arrives, status codes turned into advice, a small pool of kept-alive connections."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..base import SAMBERT, EngineError, Voice
from .redaction import REDACTOR, install_sdk_log_filter, mask_key_id
from .settings import ENV_APPKEY, STATUS_OK, STATUS_TOKEN_INVALID, SambertSettings
from .text import split_text
from .token import AcsClient, TokenCache
from .voices import LANGUAGE_DEFAULTS, VOICE_PREFIX, VOICES

_LOGGER = logging.getLogger(__name__)

_STATUS_ADVICE: dict[int, str] = {
    40000000: "the gateway rejected the request as a client error; check gateway_url and the "
              "voice options",
    STATUS_TOKEN_INVALID: "the token was rejected even right after renewing it; check that "
                          f"{ENV_APPKEY} belongs to the same Alibaba Cloud account as the "
                          "AccessKey",
    40000002: "the gateway could not parse the request (invalid message); check gateway_url "
              "points at /stream/v1/tts",
    40000003: "a parameter is out of range or unknown; check the voice name, sample rate, "
              "volume (0..100), speech_rate and pitch_rate (-500..500)",
    40000004: "the gateway timed out waiting for the request (idle timeout); check the "
              "network or proxy between this host and the gateway",
    40000005: "too many requests: the appkey's concurrency or rate limit is exceeded (the "
              "free trial allows very few); lower the number of workers or upgrade the "
              "service in the NLS console",
    40000010: "the free trial has expired or the account is in arrears; top up the Alibaba "
              "Cloud account or activate the commercial edition of Intelligent Speech "
              "Interaction",
    40020105: f"the appkey does not exist; copy the project appkey from the Intelligent Speech "
              f"Interaction console into {ENV_APPKEY} (the project must be in the gateway's "
              "region)",
    50000000: "the NLS service had a server error; this is on Alibaba Cloud's side, try again "
              "later",
    50000001: "the NLS service had an internal error; this is on Alibaba Cloud's side, try "
              "again later",
}


@dataclass(frozen=True)
class _GatewayError:
    status: int
    message: str
    request_id: str


class SambertEngine:
    """The Alibaba NLS REST client as an Engine; safe to use from several worker threads."""

    name = SAMBERT

    _POOL_SIZE = 8
    _MAX_ERROR_BODY = 64 * 1024
    _READ_SIZE = 16 * 1024

    def __init__(self, settings: SambertSettings, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """`clock` measures token age (tests advance a fake one); `sleep` waits between
        retries."""
        if AcsClient is None:
            raise EngineError("Sambert needs aliyun-python-sdk-core: install "
                              "wyoming-indextts[sambert]")
        self._settings = settings
        self._sleep = sleep
        install_sdk_log_filter()
        REDACTOR.add_secret(settings.access_key_secret, "<access-key-secret>")
        REDACTOR.add_secret(settings.access_key_id, mask_key_id(settings.access_key_id))
        self._tokens = TokenCache(settings, clock)
        url = urllib.parse.urlsplit(settings.gateway_url)
        self._gateway_https = url.scheme == "https"
        self._gateway_host = url.hostname or ""
        self._gateway_port = url.port
        self._gateway_path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._pool: list[http.client.HTTPConnection] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        self._voices = tuple(self._make_voice(v, langs, desc) for v, langs, desc in VOICES)
        self._by_name = {voice.name: voice for voice in self._voices}

    # -- Engine protocol ------------------------------------------------------------------

    def voices(self) -> Sequence[Voice]:
        return self._voices

    def voice_for_language(self, lang: str) -> Voice | None:
        """The default voice for a language tag such as "zh", "zh_CN", "en-GB", "yue", "ja"."""
        tag = lang.strip().lower().replace("_", "-")
        while tag:
            if tag in LANGUAGE_DEFAULTS:
                return self._by_name[VOICE_PREFIX + LANGUAGE_DEFAULTS[tag]]
            tag = tag.rpartition("-")[0]
        return None

    def warm_up(self) -> None:
        """Get a token now, so the first sentence does not wait for CreateToken and bad
        credentials show at start-up. Raises EngineError like synthesize()."""
        self._tokens.get()

    def synthesize(self, text: str, voice: Voice, *, opening: bool = True) -> Iterator[bytes]:
        voice_id = self._voice_id(voice)
        for piece in split_text(text, self._settings.max_text_chars):
            if piece.strip():
                yield from self._synthesize_piece(piece, voice_id, voice.sample_rate)

    def close(self) -> None:
        self._closed = True
        with self._pool_lock:
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()
        self._tokens.close()

    # -- voices ----------------------------------------------------------------------------

    def _make_voice(self, voice_id: str, languages: tuple[str, ...], description: str) -> Voice:
        s = self._settings
        options = (f"{SAMBERT}|{voice_id}|volume={s.volume}|speech_rate={s.speech_rate}|"
                   f"pitch_rate={s.pitch_rate}|sample_rate={s.sample_rate}|format=pcm")
        return Voice(
            name=VOICE_PREFIX + voice_id,
            engine=SAMBERT,
            sample_rate=s.sample_rate,
            languages=languages,
            description=f"{description} (Alibaba Cloud)",
            attribution_name="Alibaba Cloud Intelligent Speech Interaction",
            attribution_url="https://www.alibabacloud.com/product/intelligent-speech-interaction",
            fingerprint=hashlib.sha256(options.encode()).hexdigest()[:32],
            extra={"voice": voice_id},
        )

    def _voice_id(self, voice: Voice) -> str:
        known = self._by_name.get(voice.name)
        if voice.engine != SAMBERT or known is None:
            raise EngineError(
                f"voice {voice.name!r} is not a Sambert voice; pick one of "
                f"{', '.join(v.name for v in self._voices[:5])}, …"
            )
        if voice.sample_rate not in (8000, 16000):
            raise EngineError(f"Sambert speaks at 8000 or 16000 Hz, not {voice.sample_rate}")
        return known.extra["voice"]

    # -- one piece ---------------------------------------------------------------------------

    def _synthesize_piece(self, text: str, voice_id: str, sample_rate: int) -> Iterator[bytes]:
        s = self._settings
        renewed = False
        retries = 0
        while True:
            if self._closed:
                raise EngineError("the Sambert engine is closed")
            token = self._tokens.get()
            conn, response = self._send(text, voice_id, sample_rate, token)
            content_type = response.getheader("Content-Type", "") or ""
            if content_type.split(";")[0].strip().lower().startswith("audio/"):
                yield from self._stream_audio(conn, response)
                return
            error = self._read_error(conn, response, content_type)
            if error.status == STATUS_TOKEN_INVALID and not renewed:
                _LOGGER.info("NLS token rejected (40000001); renewing it and trying again")
                self._tokens.invalidate(token)
                renewed = True
                continue
            if 50000000 <= error.status < 60000000 and retries < s.server_retries:
                delay = s.retry_backoff * (2 ** retries)
                retries += 1
                _LOGGER.warning("NLS server error %d; retry %d of %d in %.1f s",
                                error.status, retries, s.server_retries, delay)
                self._sleep(delay)
                continue
            raise EngineError(self._describe_status(error, retries))

    def _describe_status(self, error: _GatewayError, retries: int) -> str:
        advice = _STATUS_ADVICE.get(error.status, "an undocumented status; see the message")
        tried = f" (after {retries + 1} attempts)" if retries else ""
        return REDACTOR.redact(
            f"Sambert synthesis failed{tried}: status {error.status}: {advice}. Gateway said: "
            f"{error.message!r}; request id {error.request_id or 'unknown'}"
        )

    def _send(self, text: str, voice_id: str, sample_rate: int,
              token: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        s = self._settings
        body = json.dumps({
            "appkey": s.appkey,
            "token": token,
            "text": text,
            "format": "pcm",
            "sample_rate": sample_rate,
            "voice": voice_id,
            "volume": s.volume,
            "speech_rate": s.speech_rate,
            "pitch_rate": s.pitch_rate,
        }, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "audio/mpeg, application/json"}
        conn, reused = self._checkout()
        try:
            try:
                conn.request("POST", self._gateway_path, body, headers)
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ConnectionAbortedError):
                if not reused:
                    raise
                # A kept-alive connection the gateway had already closed: the request never
                # got an answer, so sending it once more on a fresh connection is safe.
                conn.close()
                conn, _ = self._checkout(fresh=True)
                conn.request("POST", self._gateway_path, body, headers)
                response = conn.getresponse()
        except (TimeoutError, socket.timeout):
            conn.close()
            raise EngineError(
                f"the NLS gateway {self._gateway_host} did not answer within "
                f"{s.read_timeout:g} s; the service or the network is slow or down"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise EngineError(REDACTOR.redact(
                f"cannot reach the NLS gateway {s.gateway_url}: {exc!r}; check the network, "
                "DNS, proxy, and NLS_GATEWAY_URL"
            )) from None
        return conn, response

    def _stream_audio(self, conn: http.client.HTTPConnection,
                      response: http.client.HTTPResponse) -> Iterator[bytes]:
        """Yield the body as it arrives, in whole int16 samples."""
        complete = False
        carry = b""
        total = 0
        try:
            while True:
                try:
                    data = response.read1(self._READ_SIZE)
                except (TimeoutError, socket.timeout):
                    raise EngineError(
                        f"the NLS gateway stopped sending audio for {self._settings.read_timeout:g}"
                        " s in the middle of a response; the service or the network is slow"
                    ) from None
                except (http.client.IncompleteRead, OSError, http.client.HTTPException,
                        ValueError):
                    raise EngineError(
                        f"the NLS gateway's audio stream was cut short after {total} bytes; "
                        "the connection broke, try again"
                    ) from None
                if not data:
                    break
                total += len(data)
                data = carry + data
                whole = len(data) - (len(data) % 2)
                carry = data[whole:]
                if whole:
                    yield data[:whole]
            complete = True
        finally:
            if complete and not response.will_close:
                self._checkin(conn)
            else:  # unread body or a broken stream: the connection cannot be reused
                conn.close()
        if carry:
            _LOGGER.warning("NLS audio had an odd number of bytes (%d); dropped the last one",
                            total)
        if total == 0:
            raise EngineError("the NLS gateway answered success but sent no audio; try again")

    def _read_error(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse,
                    content_type: str) -> _GatewayError:
        request_id = response.getheader("X-NLS-RequestId", "") or ""
        try:
            raw = response.read(self._MAX_ERROR_BODY + 1)
        except (TimeoutError, socket.timeout, OSError, http.client.HTTPException):
            conn.close()
            raise EngineError(
                f"the NLS gateway's error answer (HTTP {response.status}) was cut short; "
                "try again"
            ) from None
        if response.will_close or len(raw) > self._MAX_ERROR_BODY or not response.isclosed():
            conn.close()
        else:
            self._checkin(conn)
        try:
            answer = json.loads(raw.decode("utf-8"))
            status = int(answer["status"])
            message = str(answer.get("message", ""))
            request_id = request_id or str(answer.get("task_id", ""))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            shown = content_type or "no Content-Type"
            raise EngineError(
                f"the NLS gateway answered HTTP {response.status} with {shown} that is neither "
                f"audio nor an NLS status; check NLS_GATEWAY_URL ({self._settings.gateway_url}) "
                "and any proxy in between"
            ) from None
        if status == STATUS_OK:
            raise EngineError(
                "the NLS gateway reported success but sent no audio (Content-Type "
                f"{content_type or 'missing'}); request id {request_id or 'unknown'}"
            )
        return _GatewayError(status, message, request_id)

    # -- connection pool ---------------------------------------------------------------------

    def _checkout(self, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to the gateway and whether it was used before (kept alive)."""
        if not fresh:
            with self._pool_lock:
                if self._pool:
                    return self._pool.pop(), True
        s = self._settings
        conn: http.client.HTTPConnection
        if self._gateway_https:
            conn = http.client.HTTPSConnection(
                self._gateway_host, self._gateway_port, timeout=s.connect_timeout,
                context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(
                self._gateway_host, self._gateway_port, timeout=s.connect_timeout)
        try:
            conn.connect()
        except (TimeoutError, socket.timeout):
            conn.close()
            raise EngineError(
                f"could not connect to the NLS gateway {self._gateway_host} within "
                f"{s.connect_timeout:g} s; check the network and NLS_GATEWAY_URL"
            ) from None
        except OSError as exc:
            conn.close()
            raise EngineError(
                f"could not connect to the NLS gateway {s.gateway_url}: {exc.strerror or exc}; "
                "check the network, DNS and NLS_GATEWAY_URL"
            ) from None
        # Connect with the connect timeout, then wait for data with the read timeout.
        assert conn.sock is not None
        conn.sock.settimeout(s.read_timeout)
        return conn, False

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._pool_lock:
            if not self._closed and len(self._pool) < self._POOL_SIZE:
                self._pool.append(conn)
                return
        conn.close()
