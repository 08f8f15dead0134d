"""An HTTP fuzzer: hostile, broken and merely odd clients of the HTTP API on raw sockets, in
bounded batches, with a health check between batches (/health and a Wyoming describe each
answered within 1 s, and a sentence spoken over HTTP).

Each request is written by hand (the methods, paths, headers and bodies no client library
would send), then read back, or aborted, or left half-sent. A reply must come within
REPLY_SECONDS and be well-formed: a status line, and for every error a JSON body with a
message; a 5xx other than 503 counts as a crash of that request. A connection left half-sent
must be closed by the server (its request-head deadline, or a 408 for a stalled body).

Used by the CI test (tests/http/test_fuzz.py, a few hundred requests) and the long run in
benchmarks/http_fuzz.py (>= 20,000 requests against a server process).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

WORDS = ["Hello.", "Timer done.", "Ok.", "Lights on.", "Door open.", "Good night."]
"""Cheap to speak and soon cached: a fuzzer that rendered every request would measure the voice."""
REPLY_SECONDS = 60.0
ODD_STRINGS = [
    "", " ", "...", "🙂🙂", "٣", "\u200b", "9" * 40, "\ud800", "x\udfffy.", "\x00\x01", "<script>alert(1)</script>",
    "%s%n", "\\", '"', "../../etc/passwd", "a" * 3000, "!" * 20000, "欢迎回家。",
]
SURROGATES = ["\ud800", "Hi \udfff.", "\ud83d", "\udc00\ud800"]
ODD_NUMBERS = ["1e999", "-1e999", "NaN", "Infinity", "-0", "1" * 400, "0.25", "4.0", "9e-999", "[]", "{}", "null", "true"]
FIELDS = ["text", "input", "voice", "format", "response_format", "model", "speed", "stream_format", "name"]
FORMATS = ["wav", "pcm", "flac", "mp3", "opus", "aac", "", "WAV", "ogg"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "BREW", "G T", "POST\x00"]
PATHS = [
    "/", "/tts", "/v1/audio/speech", "/v1/voices", "/v1/voices/x", "/v1/voices/x/preparation", "/v1/prerender",
    "/v1/prerender/remove", "/health", "/metrics", "/docs", "/openapi.json", "/page/app.js", "/page/../../etc/passwd",
    "/v1/voices/%00", "/v1/voices/" + "n" * 3000, "/%ff%fe", "/tts?x=1&x=2", "//tts", "/TTS", "*", "http://evil/tts",
    "/v1/voices/奶奶",
]
HOSTS = [None, "127.0.0.1", "localhost", "evil.example", "[::1]", "", "a" * 300, "127.0.0.1:1", "homeassistant.local:8123"]
ORIGINS = [None, None, "http://evil.example", "null", "http://127.0.0.1", "http://localhost:3000"]
FETCH_SITES = [None, None, "cross-site", "same-site", "same-origin", "none", "weird"]
CONTENT_TYPES = ["application/json", "text/plain", "multipart/form-data; boundary=B", "application/x-www-form-urlencoded", "", "application/json; charset=latin-1"]


@dataclass
class HttpFuzzReport:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    """5xx replies other than 503, and error replies without a JSON message."""
    hangs: list[str] = field(default_factory=list)
    """No reply within REPLY_SECONDS, or a half-sent connection the server never closed."""
    health_checks: int = 0
    failed_health_checks: list[str] = field(default_factory=list)
    describe_seconds: list[float] = field(default_factory=list)
    health_seconds: list[float] = field(default_factory=list)
    speech_seconds: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)


def _json_value(rng: random.Random) -> str:
    """A JSON value as text, including what json.dumps never writes (1e999, NaN, lone surrogates)."""
    kind = rng.random()
    if kind < 0.15:  # as a \\ud800 escape, or as the raw (invalid UTF-8) bytes
        return json.dumps(rng.choice(SURROGATES), ensure_ascii=rng.random() < 0.8)
    if kind < 0.4:
        return json.dumps(rng.choice(WORDS + ODD_STRINGS + FORMATS), ensure_ascii=rng.random() < 0.7)
    if kind < 0.7:
        return rng.choice(ODD_NUMBERS)
    if kind < 0.8:
        depth = rng.choice([3, 100, 5000])
        return "[" * depth + "]" * depth
    return json.dumps({rng.choice(FIELDS): rng.choice(WORDS)})


def _valid_shape(rng: random.Random, path: str) -> dict[str, str]:
    """A body the route accepts: a cached word to speak, or an announcement."""
    word = rng.choice(WORDS)
    if path == "/tts":
        return {"text": word, "format": rng.choice(FORMATS[:5])}
    if path == "/v1/audio/speech":
        return {"model": "tts-1", "input": word, "voice": "alloy", "response_format": rng.choice(FORMATS[:5])}
    return {"voice": "en_US-joe-medium", "text": word}


def _json_body(rng: random.Random, path: str) -> bytes:
    kind = rng.random()
    if kind < 0.3:
        return json.dumps(_valid_shape(rng, path)).encode()
    if kind < 0.7:  # the route's own fields, one of them odd
        shape = _valid_shape(rng, path)
        odd = rng.choice(list(shape) + ["speed", "voice"])
        if rng.random() < 0.25:  # the text itself: what the routes encode, split and speak
            odd = "text" if "text" in shape else "input"
        pairs = [f"{json.dumps(name)}: {_json_value(rng) if name == odd else json.dumps(value)}" for name, value in shape.items()]
        if odd not in shape:
            pairs.append(f"{json.dumps(odd)}: {_json_value(rng)}")
    else:
        pairs = [f"{json.dumps(name)}: {_json_value(rng)}" for name in rng.sample(FIELDS, rng.randint(0, 5))]
    text = "{" + ", ".join(pairs) + "}"
    if rng.random() < 0.1:
        text = text[: rng.randrange(len(text) + 1)]  # cut short
    return text.encode("utf-8", "surrogatepass")


def _multipart(rng: random.Random) -> bytes:
    parts = []
    for name in rng.sample(["name", "file", "description", "languages", "x" * 100], rng.randint(0, 4)):
        disposition = f'form-data; name="{name}"' + ('; filename="a.wav"' if name == "file" else "")
        content = rng.choice([b"RIFF\x00\x00\x00\x00WAVEfmt ", b"hello", rng.randbytes(rng.randint(0, 2000)), "名字".encode()])
        parts.append(b"--B\r\nContent-Disposition: " + disposition.encode() + b"\r\n\r\n" + content + b"\r\n")
    closing = b"--B--\r\n" if rng.random() < 0.8 else b"--B"
    return b"".join(parts) + closing


def one_request(rng: random.Random, token: str) -> bytes:
    """The bytes of one fuzzed HTTP/1.1 request (or something that only looks like one): half
    are plausible (the right Host, the token, a JSON body) so that the fuzz reaches the routes
    and not only the guards."""
    plausible = rng.random() < 0.5
    if plausible:
        method = rng.choice(["POST", "POST", "POST", "GET", "DELETE"])
        path = rng.choice(["/tts", "/v1/audio/speech", "/v1/prerender", "/v1/prerender/remove", "/v1/voices", "/v1/voices/x"])
    else:
        method = rng.choice(METHODS) if rng.random() < 0.3 else rng.choice(["GET", "POST", "DELETE"])
        path = rng.choice(PATHS)
    kind = rng.random()
    body = (
        _json_body(rng, path) if plausible or kind < 0.55
        else _multipart(rng) if kind < 0.7
        else rng.randbytes(rng.randint(0, 4000)) if kind < 0.85
        else b""
    )
    headers: list[tuple[str, str]] = []
    host = "127.0.0.1" if plausible else rng.choice(HOSTS)
    if host is not None:
        headers.append(("Host", host))
    for name, choices in (("Origin", ORIGINS), ("Sec-Fetch-Site", FETCH_SITES)):
        value = None if plausible else rng.choice(choices)
        if value is not None:
            headers.append((name, value))
    if plausible or rng.random() < 0.3:
        headers.append(("Authorization", f"Bearer {token}" if plausible else rng.choice(["Bearer wrong", "Basic abc", "Bearer", f"bearer  {token} "])))
    if rng.random() < 0.2:
        headers.append(("X-Forwarded-For", rng.choice(["127.0.0.2", "172.30.32.2", "garbage", "1.1.1.1, 127.0.0.2"])))
    headers.append(("Content-Type", "application/json" if plausible else rng.choice(CONTENT_TYPES)))
    framing = rng.random()
    if plausible or framing < 0.75:
        headers.append(("Content-Length", str(len(body))))
    elif framing < 0.85:
        headers.append(("Content-Length", rng.choice(["-1", "abc", "99999999999999999999", str(len(body) + 10), "0", "1, 2"])))
    elif framing < 0.95 and body:
        headers.append(("Transfer-Encoding", "chunked"))
        body = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n" if rng.random() < 0.8 else b"zz\r\n" + body
    if rng.random() < 0.05:
        headers.extend((f"X-Many-{n}", "v") for n in range(rng.choice([50, 500])))
    if rng.random() < 0.03:
        headers.append(("X-Huge", "h" * rng.choice([4000, 70000])))
    headers.append(("Connection", "close"))
    version = "HTTP/1.1" if plausible or rng.random() < 0.95 else rng.choice(["HTTP/1.0", "HTTP/2.0", "HTTP/9", ""])
    head = f"{method} {path} {version}\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    return head.encode("utf-8", "surrogatepass") + body


def _status(reply: bytes) -> int | None:
    line = reply.split(b"\r\n", 1)[0].split(b" ")
    return int(line[1]) if len(line) > 1 and line[0].startswith(b"HTTP/1.") and line[1].isdigit() else None


def _shown(request: bytes) -> str:
    """The request line and the start of the body, for a report."""
    head, _, body = request.partition(b"\r\n\r\n")
    line = head.split(b"\r\n", 1)[0]
    return f"{line[:100]!r} {body[:100]!r}"


def _check_reply(reply: bytes, request: bytes, report: HttpFuzzReport) -> None:
    status = _status(reply)
    report.statuses[status] += 1
    shown = _shown(request)
    if status is None:
        report.crashes.append(f"no status line in {reply[:80]!r} for {shown}")
        return
    if status >= 500 and status != 503:
        report.crashes.append(f"{status} for {shown}")
    elif status >= 400:
        _, _, body = reply.partition(b"\r\n\r\n")
        if b"HEAD " in request[:5]:
            return  # a HEAD reply has no body
        try:
            message = json.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = None
        if not isinstance(message, str) or not message:
            report.crashes.append(f"{status} without a JSON message ({body[:80]!r}) for {shown}")


async def _send(port: int, request: bytes, rng: random.Random, report: HttpFuzzReport, closing: Closing) -> None:
    report.requests += 1
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as err:
        report.hangs.append(f"connect: {err}")
        return
    mode = rng.random()
    try:
        if mode < 0.06:  # half-sent and left open: the server must close it
            writer.write(request[: rng.randrange(1, max(2, len(request)))])
            await writer.drain()
            closing.watch(reader, writer, request)
            return
        if mode < 0.12:  # half-sent, then gone
            writer.write(request[: rng.randrange(0, max(1, len(request)))])
            writer.transport.abort()
            return
        writer.write(request)
        await writer.drain()
        if mode < 0.20:  # sent, then gone before (or while) the reply comes
            await asyncio.sleep(rng.choice([0, 0.01, 0.2]))
            writer.transport.abort()
            return
        try:
            reply = await asyncio.wait_for(reader.read(-1), REPLY_SECONDS)
        except asyncio.TimeoutError:
            report.hangs.append(f"no reply within {REPLY_SECONDS:.0f} s to {_shown(request)}")
            writer.transport.abort()
            return
        _check_reply(reply, request, report)
        writer.transport.abort()
    except ConnectionError:
        writer.transport.abort()  # the server may refuse a broken request before reading it all


class Closing:
    """Half-sent connections left open, each watched in the background until the server
    closes it (a hang if it has not within `seconds`), so the batches go on meanwhile."""

    def __init__(self, seconds: float, report: HttpFuzzReport) -> None:
        self.seconds = seconds
        self.report = report
        self.tasks: list[asyncio.Task] = []

    def watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        self.tasks.append(asyncio.create_task(self._closed_by_server(reader, writer, request)))

    async def _closed_by_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        try:
            await asyncio.wait_for(reader.read(-1), self.seconds)
        except asyncio.TimeoutError:
            self.report.hangs.append(f"half-sent request still open after {self.seconds:.0f} s: {_shown(request)}")
        except ConnectionError:
            pass
        finally:
            writer.transport.abort()

    async def wait(self) -> None:
        await asyncio.gather(*self.tasks)


async def health_check(http_port: int, wyoming_port: int, number: int, token: str, report: HttpFuzzReport) -> None:
    """/health and a Wyoming describe, each within 1 s; a sentence spoken over HTTP within 30 s."""
    import httpx

    report.health_checks += 1
    step = "Wyoming describe within 1 s"
    try:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", wyoming_port)
        try:
            writer.write(b'{"type": "describe"}\n')
            await writer.drain()
            await asyncio.wait_for(reader.readline(), 1.0)
            report.describe_seconds.append(time.monotonic() - started)
        finally:
            writer.transport.abort()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", headers={"authorization": f"Bearer {token}"}) as client:
            step = "/health within 1 s"
            started = time.monotonic()
            health = await client.get("/health", timeout=1.0)
            report.health_seconds.append(time.monotonic() - started)
            if health.status_code != 200:
                raise ValueError(f"/health answered {health.status_code}")
            step = "a fresh sentence spoken over HTTP within 30 s"
            started = time.monotonic()
            spoken = await client.post("/tts", json={"text": f"Health check number {number}."}, timeout=30.0)
            report.speech_seconds.append(time.monotonic() - started)
            if spoken.status_code != 200 or len(spoken.content) < 8000:
                raise ValueError(f"/tts answered {spoken.status_code} with {len(spoken.content)} bytes")
    except (asyncio.TimeoutError, OSError, ValueError, httpx.HTTPError) as err:
        report.failed_health_checks.append(f"check {number}: {step}: {type(err).__name__} {err}".strip())


async def fuzz_http(
    http_port: int,
    wyoming_port: int,
    requests: int,
    token: str,
    *,
    seed: int = 1,
    batch: int = 500,
    concurrency: int = 16,
    closing_seconds: float = 45.0,
    rss=None,
) -> HttpFuzzReport:
    """`requests` fuzzed requests in batches, a health check after each. Half-sent requests
    left open must be closed by the server within `closing_seconds` (its request-head and
    body deadlines, with room for a busy machine)."""
    report = HttpFuzzReport()
    closing = Closing(closing_seconds, report)
    rng = random.Random(seed)
    number = 0
    while report.requests < requests:
        size = min(batch, requests - report.requests)
        items = [(one_request(rng, token), rng.randrange(1 << 30)) for _ in range(size)]

        async def worker(share: list[tuple[bytes, int]]) -> None:
            for request, request_seed in share:
                await _send(http_port, request, random.Random(request_seed), report, closing)

        await asyncio.gather(*(worker(items[i::concurrency]) for i in range(concurrency)))
        number += 1
        await health_check(http_port, wyoming_port, number, token, report)
        if rss is not None:
            report.rss_mib.append(rss())
    await closing.wait()
    return report
