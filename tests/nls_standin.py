"""A stand-in for Alibaba Cloud NLS on 127.0.0.1: CreateToken and the RESTful TTS gateway.

It follows shared/sambert/NLS_PROTOCOL.md (beside the repository) byte for byte where the document is sure, so
the real aliyun-python-sdk-core and a real HTTP client can talk to it over real sockets. One
ThreadingHTTPServer serves both: CreateToken at `/` (POP RPC style, parameters in the query),
synthesis at `/stream/v1/tts` (GET with a query or POST with a JSON body). Two services,
each with the faults the engine must survive.

API (every method is thread-safe; `times=None` means "until reset()"):

    with NlsStandIn() as nls:        # or `from tests.nls_standin import nls_standin` (fixture)
        nls.settings(**overrides) -> SambertSettings pointing at this server (short timeouts)
        nls.port, nls.gateway_url, nls.access_key_id, nls.access_key_secret, nls.appkey

        # switches for the gateway
        nls.fail_tts(status, times=1, message=None)   answer a documented status (JSON body)
        nls.throttle_tts(times=None)                   40000005 (too many requests)
        nls.hang_tts(times=1)                          no answer until release() or close()
        nls.cut_tts(times=1)                           half the audio, then the socket closes
        nls.garbage_tts(kind="html", times=1)          "html" (502 text/html), "badjson",
                                                       "nostatus" (JSON without status),
                                                       "octet" (200 application/octet-stream)
        nls.drop_keepalive(times=1)                    answer, then close the kept-alive
                                                       connection without saying so
        # switches for CreateToken
        nls.fail_token(code, http_status=400, message="...", times=1)
        nls.throttle_token(times=None)                 Throttling.User / user flow control
        nls.hang_token(times=1)
        nls.garbage_token(times=1)                     200 text/html instead of JSON
        nls.expire_tokens()                            every token issued so far → 40000001
        nls.token_lifetime = 3600.0                    seconds until ExpireTime of new tokens
        nls.release()                                  let every hung request go on
        nls.reset()                                    clear switches and records (tokens
                                                       expired stay expired)

        # records
        nls.tts_requests  -> list[TtsRequest]          every gateway request, in arrival order
        nls.token_requests -> list[TokenRequest]       every CreateToken request
        nls.issued_tokens -> list[str]

    expected_pcm(text, sample_rate) -> bytes           exactly the audio answered for `text`

Audio is a 440 Hz tone, 50 ms per character, int16 mono at the requested rate, sent with
chunked transfer in chunks of an odd size (so clients must carry half samples across reads).
Texts over 300 characters are truncated silently, as the real gateway does.

The HTTP status of gateway errors is undocumented ([unconfirmed] in the protocol notes): this
server uses 400 for 4xxxxxxx and 500 for 5xxxxxxx; clients must branch on Content-Type.
The gateway's error messages are modelled on real ones, which quote the token for 40000001.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import struct
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import numpy as np
import pytest

from wyoming_indextts.engines.sambert import SambertSettings

TTS_PATH = "/stream/v1/tts"
MAX_TEXT = 300
SECONDS_PER_CHAR = 0.05
TONE_HZ = 440.0
CHUNK_BYTES = 4001  # odd on purpose: a chunk boundary falls inside a sample
HANG_LIMIT = 30.0  # a hung handler gives up by itself after this long, whatever happens

# The voices the REST gateway documents; kept independent of the engine's own list so a typo
# there is caught here.
KNOWN_VOICES = frozenset("""
xiaoyun xiaogang ruoxi siqi sijia sicheng siyue xiaomei aixia aiqi aijia aicheng aida aiya
aimei aiyu aiyue aijing harry abby andy eric emily luna luca wendy william olivia shanshan
jiajia taozi tomoka tomoya zhiqi zhichu zhixiang zhijia zhinan zhiqian zhiru zhide zhiwei
""".split())

STATUS_MESSAGES = {
    40000000: "Gateway:CLIENT_ERROR:Client error!",
    40000001: "Gateway:ACCESS_DENIED:The token '{token}' is invalid!",
    40000002: "Gateway:MESSAGE_INVALID:Message invalid!",
    40000003: "Gateway:PARAMETER_INVALID:Parameter invalid!",
    40000004: "Gateway:IDLE_TIMEOUT:Websocket session is idle for too long time!",
    40000005: "Gateway:TOO_MANY_REQUESTS:Too many requests!",
    40000010: "Gateway:FREE_TRIAL_EXPIRED:The free trial has expired!",
    40020105: "Meta:APPKEY_NOT_EXIST:Appkey not exist!",
    50000000: "GRPC_ERROR:Grpc error!",
    50000001: "Gateway:INTERNAL_ERROR:Internal error!",
}
DOCUMENTED_STATUSES = tuple(sorted(STATUS_MESSAGES))


def expected_pcm(text: str, sample_rate: int) -> bytes:
    """The audio this stand-in answers for `text` (after its own 300-character truncation)."""
    samples = round(len(text[:MAX_TEXT]) * SECONDS_PER_CHAR * sample_rate)
    t = np.arange(samples) / sample_rate
    return (np.sin(2 * math.pi * TONE_HZ * t) * 8000).astype("<i2").tobytes()


def _percent(value: str) -> str:
    return quote(value, safe="~")


def string_to_sign(method: str, params: dict[str, str]) -> str:
    """The POP RPC canonical string: every parameter but Signature, sorted, percent-encoded."""
    canon = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in sorted(params.items())
                     if k != "Signature")
    return f"{method}&%2F&{_percent(canon)}"


def pop_signature(method: str, params: dict[str, str], secret: str) -> str:
    """The documented signature: base64(HMAC-SHA1(secret + "&", string to sign))."""
    digest = hmac.new((secret + "&").encode(), string_to_sign(method, params).encode(),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class TtsRequest:
    method: str
    params: dict[str, Any]
    """The request's parameters as the client sent them (query or JSON body)."""
    token: str
    """The token from the `token` parameter or the X-NLS-Token header."""
    text: str
    answer: str
    """"audio", "status <n>", "hang", "cut", "garbage <kind>"."""
    client_port: int
    """The client's source port: equal ports mean a kept-alive connection was reused."""


@dataclass(frozen=True)
class TokenRequest:
    method: str
    params: dict[str, str]
    answer: str
    """"ok", or the error code answered, or "hang" / "garbage"."""


@dataclass
class _Fault:
    kind: str
    remaining: int | None
    status: int = 0
    """Gateway status to answer (kind "status")."""
    code: str = ""
    """POP error code to answer (kind "error"), with `http_status` and `message`."""
    message: str | None = None
    """Gateway or POP message; for kind "garbage", which garbage."""
    http_status: int = 400


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    tts_faults: list[_Fault] = field(default_factory=list)
    token_faults: list[_Fault] = field(default_factory=list)
    tts_requests: list[TtsRequest] = field(default_factory=list)
    token_requests: list[TokenRequest] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> ExpireTime (unix s)
    revoked: set[str] = field(default_factory=set)
    nonces: set[str] = field(default_factory=set)
    hang_events: list[threading.Event] = field(default_factory=list)
    closing: bool = False


class NlsStandIn:
    """See the module docstring."""

    def __init__(self, *, access_key_id: str = "LTAI5tStandInKeyId0001",
                 access_key_secret: str = "StandInSecret-9f2c41d07a6b4e55",
                 appkey: str = "StandInAppkey01", token_lifetime: float = 3600.0) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.appkey = appkey
        self.token_lifetime = token_lifetime
        self._state = _State()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> NlsStandIn:
        handler = type("Handler", (_Handler,), {"standin": self})
        server = _Server(("127.0.0.1", 0), handler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="nls-standin",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        with self._state.lock:
            self._state.closing = True
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> NlsStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the stand-in first"
        return self._server.server_address[1]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{TTS_PATH}"

    def settings(self, **overrides: Any) -> SambertSettings:
        values: dict[str, Any] = dict(
            access_key_id=self.access_key_id, access_key_secret=self.access_key_secret,
            appkey=self.appkey, token_domain="127.0.0.1", token_port=self.port,
            token_protocol="http", gateway_url=self.gateway_url, connect_timeout=2.0,
            read_timeout=2.0, retry_backoff=0.01,
        )
        values.update(overrides)
        return SambertSettings(**values)

    # -- switches ------------------------------------------------------------------------

    def _add(self, faults: list[_Fault], fault: _Fault) -> None:
        with self._state.lock:
            faults.append(fault)

    def fail_tts(self, status: int, times: int | None = 1, message: str | None = None) -> None:
        self._add(self._state.tts_faults, _Fault("status", times, status=status, message=message))

    def throttle_tts(self, times: int | None = None) -> None:
        self.fail_tts(40000005, times)

    def drop_keepalive(self, times: int | None = 1) -> None:
        self._add(self._state.tts_faults, _Fault("drop", times))

    def hang_tts(self, times: int | None = 1) -> None:
        self._add(self._state.tts_faults, _Fault("hang", times))

    def cut_tts(self, times: int | None = 1) -> None:
        self._add(self._state.tts_faults, _Fault("cut", times))

    def garbage_tts(self, kind: str = "html", times: int | None = 1) -> None:
        if kind not in ("html", "badjson", "nostatus", "octet"):
            raise ValueError(f"unknown garbage kind {kind!r}")
        self._add(self._state.tts_faults, _Fault("garbage", times, message=kind))

    def fail_token(self, code: str, http_status: int = 400, message: str = "Error.",
                   times: int | None = 1) -> None:
        self._add(self._state.token_faults,
                  _Fault("error", times, code=code, message=message, http_status=http_status))

    def throttle_token(self, times: int | None = None) -> None:
        self.fail_token("Throttling.User", 400, "Request was denied due to user flow control.",
                        times)

    def hang_token(self, times: int | None = 1) -> None:
        self._add(self._state.token_faults, _Fault("hang", times))

    def garbage_token(self, times: int | None = 1) -> None:
        self._add(self._state.token_faults, _Fault("garbage", times))

    def expire_tokens(self) -> None:
        with self._state.lock:
            self._state.revoked.update(self._state.tokens)

    def release(self) -> None:
        with self._state.lock:
            events, self._state.hang_events = self._state.hang_events, []
        for event in events:
            event.set()

    def reset(self) -> None:
        self.release()
        with self._state.lock:
            self._state.tts_faults.clear()
            self._state.token_faults.clear()
            self._state.tts_requests.clear()
            self._state.token_requests.clear()

    # -- records -------------------------------------------------------------------------

    @property
    def tts_requests(self) -> list[TtsRequest]:
        with self._state.lock:
            return list(self._state.tts_requests)

    @property
    def token_requests(self) -> list[TokenRequest]:
        with self._state.lock:
            return list(self._state.token_requests)

    @property
    def issued_tokens(self) -> list[str]:
        with self._state.lock:
            return list(self._state.tokens)

    # -- used by the handler -------------------------------------------------------------

    def _take_fault(self, faults: list[_Fault]) -> _Fault | None:
        with self._state.lock:
            if not faults:
                return None
            fault = faults[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    faults.pop(0)
            return fault

    def _hang(self) -> None:
        event = threading.Event()
        with self._state.lock:
            if self._state.closing:
                return
            self._state.hang_events.append(event)
        event.wait(HANG_LIMIT)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are the point of several tests: stay quiet about
        # those, but let a bug in the stand-in itself print its traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    standin: NlsStandIn  # set on the subclass made by NlsStandIn.start()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path == TTS_PATH:
            self._tts(url.query, body)
        elif url.path == "/":
            self._create_token(url.query)
        else:
            self._send(404, "text/plain", b"not found")

    # -- plumbing ------------------------------------------------------------------------

    def _send(self, status: int, content_type: str | None, body: bytes,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, answer: dict[str, Any],
                   headers: dict[str, str] | None = None) -> None:
        self._send(status, "application/json;charset=utf-8", json.dumps(answer).encode(), headers)

    # -- CreateToken ---------------------------------------------------------------------

    def _create_token(self, query: str) -> None:
        standin = self.standin
        state = standin._state
        params = dict(parse_qsl(query, keep_blank_values=True))

        def answer(outcome: str) -> None:
            with state.lock:
                state.token_requests.append(TokenRequest(self.command, params, outcome))

        def error(http_status: int, code: str, message: str) -> None:
            answer(code)
            self._send_json(http_status, {
                "RequestId": str(uuid.uuid4()).upper(),
                "HostId": "nls-meta.cn-shanghai.aliyuncs.com",
                "Code": code,
                "Message": message,
                "Recommend": f"https://next.api.aliyun.com/troubleshoot?q={code}"
                             "&product=nls-cloud-meta",
            })

        fault = standin._take_fault(state.token_faults)
        if fault is not None and fault.kind == "hang":
            answer("hang")
            standin._hang()
            fault = None
        if fault is not None and fault.kind == "garbage":
            answer("garbage")
            self._send(200, "text/html", b"<html><body>502 Bad Gateway</body></html>")
            return
        if fault is not None and fault.kind == "error":
            error(fault.http_status, fault.code, fault.message or "")
            return

        for name in ("AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
                     "SignatureNonce", "Timestamp", "Action", "Version", "Format"):
            if name not in params:
                error(400, f"Missing{name}", f"{name} is mandatory for this action.")
                return
        if params["AccessKeyId"] != standin.access_key_id:
            error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
            return
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            error(400, "InvalidParameter", "Specified signature method or version is not valid.")
            return
        expected = pop_signature(self.command, params, standin.access_key_secret)
        if not hmac.compare_digest(expected, params["Signature"]):
            # As the real service does; the SDK compares this to its own string to sign and,
            # when they match, reports InvalidAccessKeySecret.
            error(400, "SignatureDoesNotMatch",
                  "Specified signature is not matched with our calculation. server string to "
                  f"sign is:{string_to_sign(self.command, params)}")
            return
        try:
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            error(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not "
                  "well formatted.")
            return
        if abs(stamp.replace(tzinfo=timezone.utc).timestamp() - time.time()) > 900:
            error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is "
                  "expired.")
            return
        with state.lock:
            reused = params["SignatureNonce"] in state.nonces
            state.nonces.add(params["SignatureNonce"])
        if reused:
            error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            return
        if params["Action"] != "CreateToken" or params["Version"] != "2019-02-28":
            error(404, "InvalidAction.NotFound",
                  "Specified api is not found, please check your url and method.")
            return

        token = uuid.uuid4().hex
        expire_time = int(time.time() + standin.token_lifetime)
        with state.lock:
            state.tokens[token] = expire_time
        answer("ok")
        self._send_json(200, {
            "NlsRequestId": uuid.uuid4().hex,
            "RequestId": str(uuid.uuid4()).upper(),
            "Token": {"ExpireTime": expire_time, "Id": token, "UserId": "1234567890123456"},
        })

    # -- TTS -----------------------------------------------------------------------------

    def _tts(self, query: str, body: bytes) -> None:
        standin = self.standin
        state = standin._state
        task_id = uuid.uuid4().hex
        params: dict[str, Any]
        if self.command == "POST":
            try:
                params = json.loads(body.decode("utf-8"))
                if not isinstance(params, dict):
                    raise ValueError("not an object")
            except (ValueError, UnicodeDecodeError):
                params = {}
                self._tts_error(params, "", task_id, 40000002)
                return
        else:
            params = dict(parse_qsl(query, keep_blank_values=True))
        token = str(params.get("token") or self.headers.get("X-NLS-Token") or "")
        text = str(params.get("text", ""))

        def record(outcome: str) -> None:
            with state.lock:
                state.tts_requests.append(TtsRequest(self.command, params, token, text, outcome,
                                                    self.client_address[1]))

        fault = standin._take_fault(state.tts_faults)
        if fault is not None and fault.kind == "hang":
            record("hang")
            standin._hang()
            fault = None
        if fault is not None and fault.kind == "status":
            self._tts_error(params, token, task_id, fault.status, fault.message, record)
            return
        if fault is not None and fault.kind == "garbage":
            record(f"garbage {fault.message}")
            self._garbage(fault.message or "html")
            return

        with state.lock:
            expire_time = state.tokens.get(token)
            revoked = token in state.revoked
        if expire_time is None or revoked or expire_time <= time.time():
            self._tts_error(params, token, task_id, 40000001, None, record)
            return
        if params.get("appkey") != standin.appkey:
            self._tts_error(params, token, task_id, 40020105, None, record)
            return
        fmt = params.get("format", "pcm")
        try:
            sample_rate = int(params.get("sample_rate", 16000))
            volume = int(params.get("volume", 50))
            speech_rate = int(params.get("speech_rate", 0))
            pitch_rate = int(params.get("pitch_rate", 0))
        except (TypeError, ValueError):
            self._tts_error(params, token, task_id, 40000003, None, record)
            return
        if (not text or fmt not in ("pcm", "wav") or sample_rate not in (8000, 16000)
                or params.get("voice", "xiaoyun") not in KNOWN_VOICES
                or not 0 <= volume <= 100 or not -500 <= speech_rate <= 500
                or not -500 <= pitch_rate <= 500):
            # mp3 is documented but this stand-in cannot encode it; it answers 40000003.
            self._tts_error(params, token, task_id, 40000003, None, record)
            return

        audio = expected_pcm(text, sample_rate)
        if fmt == "wav":
            audio = _wav_header(len(audio), sample_rate) + audio
        cut = fault is not None and fault.kind == "cut"
        record("cut" if cut else "audio")
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-NLS-RequestId", task_id)
        self.end_headers()
        end = len(audio) // 2 if cut else len(audio)
        for start in range(0, end, CHUNK_BYTES):
            chunk = audio[start:min(start + CHUNK_BYTES, end)]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if cut:
            # A chunk header promising more than ever arrives, then the socket closes.
            self.wfile.write(b"%x\r\n" % CHUNK_BYTES + audio[end:end + 100])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")
        if fault is not None and fault.kind == "drop":
            self.close_connection = True  # no "Connection: close": the client finds out later

    def _tts_error(self, params: dict[str, Any], token: str, task_id: str, status: int,
                   message: str | None = None, record: Any = None) -> None:
        if record is not None:
            record(f"status {status}")
        else:
            with self.standin._state.lock:
                self.standin._state.tts_requests.append(
                    TtsRequest(self.command, params, token, "", f"status {status}",
                               self.client_address[1]))
        text = message or STATUS_MESSAGES.get(status, "Gateway:UNKNOWN:Unknown error!")
        http_status = 500 if status >= 50000000 else 400
        self._send_json(http_status, {
            "task_id": task_id, "result": "", "status": status,
            "message": text.format(token=token),
        }, {"X-NLS-RequestId": task_id})

    def _garbage(self, kind: str) -> None:
        if kind == "html":
            self._send(502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>")
        elif kind == "badjson":
            self._send(400, "application/json", b'{"task_id": "abc", "status": 4000')
        elif kind == "nostatus":
            self._send(400, "application/json", b'{"error": "something else entirely"}')
        else:
            self._send(200, "application/octet-stream", b"\x00\x01" * 100)


def _wav_header(data_bytes: int, sample_rate: int) -> bytes:
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1,
                       1, sample_rate, sample_rate * 2, 2, 16, b"data", data_bytes)


@pytest.fixture
def nls_standin() -> Iterator[NlsStandIn]:
    """A running stand-in, closed after the test. Import it into a test module to use it."""
    with NlsStandIn() as server:
        yield server
