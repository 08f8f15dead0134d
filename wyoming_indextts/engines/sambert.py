"""Alibaba Cloud Intelligent Speech Interaction (NLS) short-text synthesis, the "sambert" engine.

Two services are involved (see shared/sambert/NLS_PROTOCOL.md beside the repository):

* CreateToken (POP API, `nls-meta.cn-shanghai.aliyuncs.com`) turns an AccessKey into a token.
  It goes through aliyun-python-sdk-core's `CommonRequest`, which does the HMAC-SHA1 signing.
  The token is cached until shortly before its ExpireTime and renewed once more whenever the
  gateway says 40000001 (token invalid).
* The RESTful gateway (`/stream/v1/tts`) speaks one piece of at most 300 characters per
  request and streams the audio back. We use **POST with a JSON body** rather than GET: the
  text needs no URL encoding, there is no URL length limit, and the token travels in the
  body instead of a URL that proxies and access logs like to record. http.client (stdlib) is
  used so the body can be read as it arrives: PCM is yielded chunk by chunk.

Credentials (AccessKey secret, tokens) never reach a log line or an exception message: the
SDK's own loggers get a redacting filter, and every message built from a service answer is
passed through the same redaction.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .base import SAMBERT, EngineError, Voice

try:  # the optional extra "sambert"; checked when an engine is built
    from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest
except ImportError:
    AcsClient = None

_LOGGER = logging.getLogger(__name__)

ENGINE_NAME = SAMBERT
VOICE_PREFIX = "sambert-"

DEFAULT_REGION = "cn-shanghai"
DEFAULT_TOKEN_DOMAIN = "nls-meta.cn-shanghai.aliyuncs.com"
DEFAULT_GATEWAY_URL = "https://nls-gateway-cn-shanghai.aliyuncs.com/stream/v1/tts"
TOKEN_API_VERSION = "2019-02-28"

MAX_TEXT_CHARS = 300
"""The gateway silently truncates text beyond this many characters, so we split first."""

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_APPKEY = "NLS_APPKEY"
ENV_GATEWAY_URL = "NLS_GATEWAY_URL"
ENV_TOKEN_DOMAIN = "NLS_TOKEN_DOMAIN"
ENV_REGION = "NLS_REGION"

STATUS_OK = 20000000
STATUS_TOKEN_INVALID = 40000001


# --------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class SambertSettings:
    """Everything the engine needs; secrets are kept out of `repr`."""

    access_key_id: str = field(repr=False)
    access_key_secret: str = field(repr=False)
    appkey: str
    region: str = DEFAULT_REGION
    token_domain: str = DEFAULT_TOKEN_DOMAIN
    token_port: int | None = None
    """None: the protocol's default port. Set (with protocol "http") for a stand-in server."""
    token_protocol: str = "https"
    gateway_url: str = DEFAULT_GATEWAY_URL
    sample_rate: int = 16000
    volume: int = 50
    speech_rate: int = 0
    pitch_rate: int = 0
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    """Longest silence allowed on a socket (token service and gateway) before giving up."""
    token_refresh_margin: float = 600.0
    """Renew the token this many seconds before its ExpireTime (at most half its lifetime)."""
    server_retries: int = 2
    """How often a piece is retried after a 5xxxxxxx status (server-side errors)."""
    retry_backoff: float = 0.5
    """Delay before the first retry; doubles with each further one."""
    max_text_chars: int = MAX_TEXT_CHARS

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate not in (8000, 16000):
            problems.append(f"sample_rate must be 8000 or 16000, not {self.sample_rate}")
        if not 0 <= self.volume <= 100:
            problems.append(f"volume must be within 0..100, not {self.volume}")
        if not -500 <= self.speech_rate <= 500:
            problems.append(f"speech_rate must be within -500..500, not {self.speech_rate}")
        if not -500 <= self.pitch_rate <= 500:
            problems.append(f"pitch_rate must be within -500..500, not {self.pitch_rate}")
        if self.token_protocol not in ("http", "https"):
            problems.append(f"token_protocol must be http or https, not {self.token_protocol!r}")
        if urllib.parse.urlsplit(self.gateway_url).scheme not in ("http", "https"):
            problems.append(f"gateway_url must be an http(s) URL, not {self.gateway_url!r}")
        if not 1 <= self.max_text_chars <= MAX_TEXT_CHARS:
            problems.append(f"max_text_chars must be within 1..{MAX_TEXT_CHARS}")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            problems.append("timeouts must be positive")
        if self.server_retries < 0 or self.retry_backoff < 0:
            problems.append("server_retries and retry_backoff must not be negative")
        if problems:
            raise ValueError("invalid Sambert settings: " + "; ".join(problems))

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], credentials_file: Path | None = None
    ) -> SambertSettings | None:
        """Settings from environment variables and/or a credentials file; None if neither has any.

        Keys (in the environment or the file): `ALIBABA_CLOUD_ACCESS_KEY_ID`,
        `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, `NLS_APPKEY`, and optionally `NLS_REGION`,
        `NLS_TOKEN_DOMAIN`, `NLS_GATEWAY_URL`.

        The file is either a JSON object with those keys (recognised by a leading `{`) or
        KEY=VALUE lines (blank lines and `#` comments ignored, an optional `export ` prefix and
        surrounding quotes stripped), so a Docker env-file or a small secrets JSON both work.
        Environment variables win over the file; the file supplies what the environment lacks.

        Raises ValueError when the configuration is partial (say, an AccessKey without an
        appkey) or the file cannot be read: a half-configured cloud engine is a mistake worth
        reporting, not a reason to silently run without it. Messages name keys, never values.
        """
        values: dict[str, str] = {}
        if credentials_file is not None:
            values.update(_read_credentials_file(credentials_file))
        for key in (ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_APPKEY, ENV_REGION,
                    ENV_TOKEN_DOMAIN, ENV_GATEWAY_URL):
            if env.get(key, "").strip():
                values[key] = env[key].strip()

        required = (ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_APPKEY)
        present = [key for key in required if values.get(key)]
        if not present:
            return None
        missing = [key for key in required if not values.get(key)]
        if missing:
            source = f" (environment or {credentials_file})" if credentials_file else ""
            raise ValueError(
                f"Sambert is half configured: {', '.join(missing)} missing{source}; "
                f"set all of {', '.join(required)} or none of them"
            )
        optional: dict[str, str] = {}
        if values.get(ENV_REGION):
            optional["region"] = values[ENV_REGION]
        if values.get(ENV_TOKEN_DOMAIN):
            optional["token_domain"] = values[ENV_TOKEN_DOMAIN]
        if values.get(ENV_GATEWAY_URL):
            optional["gateway_url"] = values[ENV_GATEWAY_URL]
        return cls(
            access_key_id=values[ENV_ACCESS_KEY_ID],
            access_key_secret=values[ENV_ACCESS_KEY_SECRET],
            appkey=values[ENV_APPKEY],
            **optional,
        )


def _read_credentials_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read Sambert credentials file {path}: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # Only the position: the text itself holds secrets.
            raise ValueError(
                f"Sambert credentials file {path} is not valid JSON (line {exc.lineno}, "
                f"column {exc.colno})"
            ) from None
        if not isinstance(data, dict):
            raise ValueError(f"Sambert credentials file {path} must hold a JSON object")
        return {str(k): str(v).strip() for k, v in data.items() if v is not None}
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"Sambert credentials file {path}, line {number}: expected KEY=VALUE"
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


# --------------------------------------------------------------------------------------------
# Voices

# (id, languages, English description) for the voices the REST gateway documents. Languages:
# "zh" Mandarin, "en" English, "yue" Cantonese, "ja" Japanese. Ordered so that the first voice
# listing a language is that language's default: a caller that simply takes the first match
# gets the same voice as voice_for_language().
_VOICES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("xiaoyun", ("zh",), "Xiaoyun: standard female Mandarin voice, handles mixed-in English"),
    ("xiaogang", ("zh",), "Xiaogang: standard male Mandarin voice, handles mixed-in English"),
    ("abby", ("en",), "Abby: female American English voice"),
    ("andy", ("en",), "Andy: male American English voice"),
    ("harry", ("en",), "Harry: male British English voice"),
    ("eric", ("en",), "Eric: male British English voice"),
    ("emily", ("en",), "Emily: female British English voice"),
    ("luna", ("en",), "Luna: female British English voice"),
    ("luca", ("en",), "Luca: male British English voice"),
    ("wendy", ("en",), "Wendy: female British English voice"),
    ("william", ("en",), "William: male British English voice"),
    ("olivia", ("en",), "Olivia: female British English voice"),
    ("shanshan", ("yue",), "Shanshan: female Cantonese voice"),
    ("jiajia", ("yue",), "Jiajia: female Cantonese voice"),
    ("taozi", ("yue",), "Taozi: female Cantonese voice"),
    ("tomoka", ("ja",), "Tomoka: female Japanese voice"),
    ("tomoya", ("ja",), "Tomoya: male Japanese voice"),
    ("ruoxi", ("zh", "en"), "Ruoxi: gentle female Mandarin voice"),
    ("siqi", ("zh", "en"), "Siqi: gentle female Mandarin voice"),
    ("sijia", ("zh", "en"), "Sijia: standard female Mandarin voice"),
    ("sicheng", ("zh", "en"), "Sicheng: standard male Mandarin voice"),
    ("siyue", ("zh", "en"), "Siyue: gentle female Mandarin voice (customer service)"),
    ("xiaomei", ("zh", "en"), "Xiaomei: sweet female Mandarin voice (customer service)"),
    ("aixia", ("zh", "en"), "Aixia: friendly female Mandarin voice (customer service)"),
    ("aiqi", ("zh", "en"), "Aiqi: gentle female Mandarin voice"),
    ("aijia", ("zh", "en"), "Aijia: standard female Mandarin voice"),
    ("aicheng", ("zh", "en"), "Aicheng: standard male Mandarin voice"),
    ("aida", ("zh", "en"), "Aida: standard male Mandarin voice"),
    ("aiya", ("zh", "en"), "Aiya: stern female Mandarin voice (customer service)"),
    ("aimei", ("zh", "en"), "Aimei: sweet female Mandarin voice (customer service)"),
    ("aiyu", ("zh", "en"), "Aiyu: natural female Mandarin voice (customer service)"),
    ("aiyue", ("zh", "en"), "Aiyue: gentle female Mandarin voice (customer service)"),
    ("aijing", ("zh", "en"), "Aijing: stern female Mandarin voice (customer service)"),
    ("zhiqi", ("zh", "en"), "Zhiqi: gentle female Mandarin voice (premium)"),
    ("zhichu", ("zh", "en"), "Zhichu: male Mandarin voice for food and news narration (premium)"),
    ("zhixiang", ("zh", "en"), "Zhixiang: deep male Mandarin narration voice (premium)"),
    ("zhijia", ("zh", "en"), "Zhijia: standard female Mandarin news voice (premium)"),
    ("zhinan", ("zh", "en"), "Zhinan: male Mandarin advertising voice (premium)"),
    ("zhiqian", ("zh", "en"), "Zhiqian: female Mandarin news and narration voice (premium)"),
    ("zhiru", ("zh", "en"), "Zhiru: female Mandarin news voice (premium)"),
    ("zhide", ("zh", "en"), "Zhide: male Mandarin news voice (premium)"),
    ("zhiwei", ("zh", "en"), "Zhiwei: young girl's Mandarin voice (premium)"),
)

_LANGUAGE_DEFAULTS: dict[str, str] = {
    "zh": "xiaoyun",
    "en": "abby",      # American English: Home Assistant's most common English locale
    "en-gb": "emily",
    "yue": "shanshan",
    "zh-hk": "shanshan",  # Hong Kong and Macau Chinese is spoken Cantonese
    "zh-mo": "shanshan",
    "ja": "tomoka",
}


# --------------------------------------------------------------------------------------------
# Redaction


def _mask_key_id(key_id: str) -> str:
    """An AccessKey ID shortened so a person can tell keys apart without it being copied."""
    if len(key_id) <= 8:
        return "****"
    return f"{key_id[:4]}…{key_id[-4:]}"


class _Redactor(logging.Filter):
    """Replaces known secrets in log records and in messages we build.

    Holds the AccessKey secrets and the most recent tokens of every engine in this process. The
    SDK logs the CreateToken response body at DEBUG before we have even seen the token, so the
    `"Id": "..."` field of such a body is scrubbed by pattern as well.
    """

    _RECENT_TOKENS = 64
    _TOKEN_FIELD = re.compile(r'("Id"\s*:\s*")[^"\\]*')

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._fixed: dict[str, str] = {}
        self._tokens: deque[str] = deque(maxlen=self._RECENT_TOKENS)

    def add_secret(self, value: str, replacement: str) -> None:
        if value:
            with self._lock:
                self._fixed[value] = replacement

    def add_token(self, token: str) -> None:
        if token:
            with self._lock:
                self._tokens.append(token)

    def redact(self, text: str) -> str:
        with self._lock:
            pairs = list(self._fixed.items()) + [(t, "<token>") for t in self._tokens]
        # Longest first, so a secret that contains another is replaced whole.
        for value, replacement in sorted(pairs, key=lambda p: len(p[0]), reverse=True):
            if value in text:
                text = text.replace(value, replacement)
        return self._TOKEN_FIELD.sub(r"\1<token>", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's problem, not ours
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACTOR = _Redactor()

# Loggers of aliyun-python-sdk-core that may print request URLs or response bodies.
_SDK_LOGGERS = (
    "aliyunsdkcore.client",
    "aliyunsdkcore.http.http_response",
    "aliyunsdkcore.retry.retry_condition",
    "aliyunsdkcore.vendored.requests.packages.urllib3.connectionpool",
)


def _install_sdk_log_filter() -> None:
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


# --------------------------------------------------------------------------------------------
# Text splitting

# Sentence ends: CJK terminators need no space after them; an ASCII period only counts before
# whitespace or the end (so "3.14" and "e.g.x" stay whole). Closing quotes and brackets stay with
# their sentence, and trailing whitespace is attached to the piece before it.
_SENTENCE_END = re.compile(
    r"(?:[。！？；!?;…]+|\.(?=\s|$))[\"'”’」』）)\]]*\s*|\n\s*"
)
# Clause ends: CJK commas and colons always; ASCII ones only before whitespace ("1,000" stays).
_CLAUSE_END = re.compile(r"(?:[，、：]+|[,:](?=\s))[\"'”’」』）)\]]*\s*|\s+[—–]+\s*")
_WORD_END = re.compile(r"\s+")


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Cut text into pieces of at most `limit` characters whose concatenation is `text`.

    Prefers sentence ends, then clause ends, then spaces between words; only a run longer than
    `limit` with none of those (CJK without punctuation, a very long word) is cut mid-run.
    Pieces are packed greedily so long text needs as few requests as possible.
    """
    if len(text) <= limit:
        return [text] if text else []
    return _pack(text, limit, (_SENTENCE_END, _CLAUSE_END, _WORD_END))


def _pack(text: str, limit: int, levels: tuple[re.Pattern[str], ...]) -> list[str]:
    if len(text) <= limit:
        return [text]
    if not levels:
        return [text[i:i + limit] for i in range(0, len(text), limit)]
    units = _units(text, levels[0])
    pieces: list[str] = []
    current = ""
    for unit in units:
        if len(unit) > limit:
            if current:
                pieces.append(current)
                current = ""
            sub = _pack(unit, limit, levels[1:])
            pieces.extend(sub[:-1])
            current = sub[-1]  # the tail may still share a piece with what follows
        elif len(current) + len(unit) <= limit:
            current += unit
        else:
            pieces.append(current)
            current = unit
    if current:
        pieces.append(current)
    return pieces


def _units(text: str, boundary: re.Pattern[str]) -> list[str]:
    units = []
    start = 0
    for match in boundary.finditer(text):
        if match.end() > start:
            units.append(text[start:match.end()])
            start = match.end()
    if start < len(text):
        units.append(text[start:])
    return units


# --------------------------------------------------------------------------------------------
# Token cache


class _TokenCache:
    """One NLS token shared by all worker threads, renewed ahead of its ExpireTime."""

    def __init__(self, settings: SambertSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._client: AcsClient | None = None  # built on first use

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` after the gateway rejected it; a newer token is kept."""
        with self._lock:
            if self._token == token:
                self._token = None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.session.close()
                self._client = None

    def _fetch(self) -> None:
        s = self._settings
        if self._client is None:
            port = s.token_port or (443 if s.token_protocol == "https" else 80)
            # auto_retry off: the SDK does not retry CreateToken anyway; saying so pins the
            # worst case at one timeout, after which the chain falls back to another engine.
            self._client = AcsClient(
                s.access_key_id, s.access_key_secret, s.region, auto_retry=False, port=port,
                connect_timeout=s.connect_timeout, timeout=s.read_timeout,
            )
        request = CommonRequest()
        request.set_method("POST")
        request.set_domain(s.token_domain)
        request.set_protocol_type(s.token_protocol)
        request.set_version(TOKEN_API_VERSION)
        request.set_action_name("CreateToken")
        started = self._clock()
        try:
            body = self._client.do_action_with_exception(request)
        except ServerException as exc:
            raise EngineError(self._describe_server_error(exc)) from None
        except ClientException as exc:
            raise EngineError(_REDACTOR.redact(
                f"could not get an NLS token from {s.token_protocol}://{s.token_domain}: "
                f"{exc.get_error_msg()} — check the network, DNS and proxy settings "
                f"(the request times out after {s.connect_timeout:g} s connect / "
                f"{s.read_timeout:g} s read)"
            )) from None
        try:
            answer = json.loads(body)
            token = answer["Token"]["Id"]
            expire_time = float(answer["Token"]["ExpireTime"])
            if not isinstance(token, str) or not token:
                raise ValueError("empty token")
        except (ValueError, KeyError, TypeError):
            raise EngineError(
                f"the NLS token service at {s.token_domain} answered CreateToken with something "
                "that is not a token (no Token.Id/ExpireTime); check NLS_TOKEN_DOMAIN points "
                "at the NLS meta service"
            ) from None
        _REDACTOR.add_token(token)
        # Renew `margin` seconds early, but never later than half-way through the lifetime, so a
        # short-lived token is not renewed on every request yet never used past its end.
        wall_now = time.time()
        lifetime = expire_time - wall_now
        if lifetime <= 0:
            _LOGGER.warning(
                "NLS token arrived already expired (ExpireTime %.0f, local time %.0f): the "
                "local clock is probably wrong; using it for one minute", expire_time, wall_now)
            lifetime = 60.0
        margin = min(s.token_refresh_margin, lifetime / 2)
        self._token = token
        self._refresh_at = started + lifetime - margin
        _LOGGER.debug("got an NLS token valid for %.0f s; renewing in %.0f s",
                      lifetime, lifetime - margin)

    def _describe_server_error(self, exc: ServerException) -> str:
        s = self._settings
        code = exc.get_error_code() or ""
        key = _mask_key_id(s.access_key_id)
        if code in ("InvalidAccessKeySecret", "SignatureDoesNotMatch"):
            return (f"Alibaba Cloud rejected the AccessKey secret for AccessKey ID {key} "
                    f"({code}): check {ENV_ACCESS_KEY_SECRET} (copy it again from the RAM "
                    "console; it is shown only when the key is created)")
        if code == "InvalidAccessKeyId.NotFound":
            return (f"Alibaba Cloud does not know AccessKey ID {key} ({code}): check "
                    f"{ENV_ACCESS_KEY_ID}; the key may have been deleted")
        if code == "InvalidAccessKeyId.Inactive":
            return (f"AccessKey ID {key} is disabled ({code}): enable it in the RAM console "
                    "or create a new one")
        if code.startswith("Throttling"):
            return ("the NLS token service is throttling this account (user flow control, "
                    f"{code}): too many CreateToken calls; wait a minute and try again")
        if code.startswith("Forbidden") or "NoPermission" in code:
            return (f"AccessKey ID {key} may not create NLS tokens ({code}): grant the RAM "
                    "user the AliyunNLSFullAccess policy")
        if code in ("InvalidTimeStamp.Expired", "InvalidTimeStamp.Format"):
            return (f"the token service rejected the request time ({code}): the local clock "
                    "is off; enable NTP")
        return _REDACTOR.redact(
            f"the NLS token service refused CreateToken: {code} (HTTP {exc.get_http_status()}): "
            f"{exc.get_error_msg()}; request id {exc.get_request_id()}"
        )


# --------------------------------------------------------------------------------------------
# The gateway


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

    name = ENGINE_NAME

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
        _install_sdk_log_filter()
        _REDACTOR.add_secret(settings.access_key_secret, "<access-key-secret>")
        _REDACTOR.add_secret(settings.access_key_id, _mask_key_id(settings.access_key_id))
        self._tokens = _TokenCache(settings, clock)
        url = urllib.parse.urlsplit(settings.gateway_url)
        self._gateway_https = url.scheme == "https"
        self._gateway_host = url.hostname or ""
        self._gateway_port = url.port
        self._gateway_path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._pool: list[http.client.HTTPConnection] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        self._voices = tuple(self._make_voice(v, langs, desc) for v, langs, desc in _VOICES)
        self._by_name = {voice.name: voice for voice in self._voices}

    # -- Engine protocol ------------------------------------------------------------------

    def voices(self) -> Sequence[Voice]:
        return self._voices

    def voice_for_language(self, lang: str) -> Voice | None:
        """The default voice for a language tag such as "zh", "zh_CN", "en-GB", "yue", "ja"."""
        tag = lang.strip().lower().replace("_", "-")
        while tag:
            if tag in _LANGUAGE_DEFAULTS:
                return self._by_name[VOICE_PREFIX + _LANGUAGE_DEFAULTS[tag]]
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
        options = (f"{ENGINE_NAME}|{voice_id}|volume={s.volume}|speech_rate={s.speech_rate}|"
                   f"pitch_rate={s.pitch_rate}|sample_rate={s.sample_rate}|format=pcm")
        return Voice(
            name=VOICE_PREFIX + voice_id,
            engine=ENGINE_NAME,
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
        if voice.engine != ENGINE_NAME or known is None:
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
        return _REDACTOR.redact(
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
            raise EngineError(_REDACTOR.redact(
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
