"""A Wyoming protocol fuzzer: hostile, broken and merely odd clients in bounded batches, with a
health check between batches (a describe answered within 1 s and a fresh sentence spoken).

Used by the CI test (tests/test_fuzz.py, ~20,000 events) and the long run in
benchmarks/fuzz_soak.py (>= 100,000 events against a server process).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Cheap to speak and soon cached: a fuzzer that rendered every request would measure the voice.
WORDS = ["Hello.", "Timer done.", "Ok.", "Lights on.", "Door open.", "Good night."]
ODD_TEXTS = [
    "", " ", "...", "🙂🙂", "٣", "𝟘", "ᎠᎡ", "\u200b", "Dr. " * 50, "9" * 40, "a" * 3000,
    "\ud800", "x\udfffy.", "\x00\x01", "<script>alert(1)</script>", "%s%n", "\\", "\"",
]
EVENT_TYPES = [
    "describe", "synthesize", "synthesize-start", "synthesize-chunk", "synthesize-stop",
    "audio-chunk", "ping", "info", "error", "", "x" * 300, "transcribe",
]
ODD_VALUES: list[object] = [
    None, True, 0, -1, 1.5, 1e308, "", "x", [], {}, [1, [2]], {"name": None}, {"name": 5},
    {"name": "no-such-voice"}, {"name": "../../etc/passwd"}, "\ud800",
]


def _odd(rng: random.Random) -> object:
    return rng.choice(ODD_VALUES + ODD_TEXTS)


def _deep(rng: random.Random) -> str:
    depth = rng.choice([100, 2_000, 20_000])
    return "[" * depth + "]" * depth


def one_event(rng: random.Random) -> bytes:
    """The bytes of one fuzzed event (or something that only looks like the start of one)."""
    kind = rng.random()
    if kind < 0.03:
        return json.dumps({"type": "synthesize", "data": {"text": rng.choice(WORDS)}}).encode() + b"\n"
    if kind < 0.10:
        return b'{"type": "describe"}\n'
    if kind < 0.35:
        data = {rng.choice(["text", "voice", "context", "text_format"]): _odd(rng) for _ in range(rng.randint(0, 3))}
        header = {"type": rng.choice(EVENT_TYPES), "data": data}
        return json.dumps(header, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass") + b"\n"
    if kind < 0.50:
        body = json.dumps({"text": _odd(rng), "voice": _odd(rng)}).encode("utf-8", "surrogatepass")
        declared = rng.choice([len(body), len(body) - 1, 0, -5, len(body) + 3])
        header = {"type": rng.choice(EVENT_TYPES), "data_length": declared}
        if declared != len(body) and declared > 0 and rng.random() < 0.5:
            body = body[:declared].ljust(declared, b" ")
        else:
            body = body[: max(declared, 0)]
        return json.dumps(header).encode() + b"\n" + body
    if kind < 0.60:
        value = rng.choice(["Infinity", "-Infinity", "1e999", "NaN", '"7"', "[]", "null", "2.5", "-1"])
        field_name = rng.choice(["data_length", "payload_length"])
        return f'{{"type": "synthesize", "{field_name}": {value}}}\n'.encode()
    if kind < 0.66:
        where = rng.random()
        if where < 0.5:
            return f'{{"type": "synthesize", "data": {{"text": {_deep(rng)}}}}}\n'.encode()
        body = f'{{"x": {_deep(rng)}}}'.encode()
        return json.dumps({"type": "synthesize", "data_length": len(body)}).encode() + b"\n" + body
    if kind < 0.74:
        payload = rng.randbytes(rng.randint(0, 3000))
        header = {"type": rng.choice(EVENT_TYPES), "payload_length": len(payload), "data": {"rate": _odd(rng)}}
        return json.dumps(header).encode() + b"\n" + payload
    if kind < 0.80:
        return rng.randbytes(rng.randint(1, 200)).replace(b"\n", b" ") + b"\n"
    if kind < 0.83:
        return b"[" + b"1," * rng.randint(1, 30000) + b"1]\n"
    if kind < 0.84:
        size = (1 << 20) + rng.randint(1, 4096)  # just over the limit: read and discarded
        return json.dumps({"type": "synthesize", "payload_length": size}).encode() + b"\n" + bytes(size)
    stream = [b'{"type": "synthesize-start"}\n']
    for _ in range(rng.randint(0, 4)):
        text = rng.choice(WORDS + ODD_TEXTS)
        stream.append(
            json.dumps({"type": "synthesize-chunk", "data": {"text": text}}).encode("utf-8", "surrogatepass") + b"\n"
        )
    if rng.random() < 0.7:
        stream.append(b'{"type": "synthesize-stop"}\n')
    return b"".join(rng.sample(stream, len(stream)) if rng.random() < 0.2 else stream)


@dataclass
class FuzzReport:
    events: int = 0
    connections: int = 0
    health_checks: int = 0
    failed_health_checks: list[str] = field(default_factory=list)
    describe_seconds: list[float] = field(default_factory=list)
    sentence_seconds: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)


async def _one_connection(port: int, payloads: list[bytes], rng: random.Random) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def drain_replies() -> None:
        try:
            while await reader.read(1 << 16):
                pass
        except ConnectionError:
            pass

    replies = asyncio.create_task(drain_replies())
    try:
        for payload in payloads:
            writer.write(payload)
            await writer.drain()
        if rng.random() < 0.2:
            writer.write(b'{"type": "synthesize", "data_length": 50}\n{"te')  # leave half-way
        await asyncio.sleep(rng.choice([0, 0, 0.01, 0.1]))
    except ConnectionError:
        pass
    finally:
        if rng.random() < 0.5:
            writer.transport.abort()
        else:
            writer.close()
        replies.cancel()


async def health_check(port: int, number: int, report: FuzzReport) -> None:
    """Describe within 1 s (Home Assistant's timeout) and a sentence never heard before spoken."""
    report.health_checks += 1
    started = time.monotonic()
    step = "connect"
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            step = "describe within 1 s"
            writer.write(b'{"type": "describe"}\n')
            await writer.drain()
            await asyncio.wait_for(_read_until(reader, "info"), 1.0)
            report.describe_seconds.append(time.monotonic() - started)
            step = "a fresh sentence spoken within 30 s"
            spoken = time.monotonic()
            text = f"Health check number {number}."
            writer.write(json.dumps({"type": "synthesize", "data": {"text": text}}).encode() + b"\n")
            await writer.drain()
            audio = await asyncio.wait_for(_read_until(reader, "audio-stop"), 30.0)
            report.sentence_seconds.append(time.monotonic() - spoken)
            if audio < 8000:
                report.failed_health_checks.append(f"check {number}: only {audio} bytes of audio")
        finally:
            writer.transport.abort()
    except (asyncio.TimeoutError, ConnectionError, ValueError) as err:
        report.failed_health_checks.append(f"check {number}: {step}: {type(err).__name__} {err}".strip())


async def _read_until(reader: asyncio.StreamReader, last: str) -> int:
    """Read events until one of type `last`; returns the audio bytes seen on the way."""
    audio = 0
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError(f"closed before {last}")
        header = json.loads(line)
        if header.get("data_length"):
            await reader.readexactly(header["data_length"])
        if header.get("payload_length"):
            await reader.readexactly(header["payload_length"])
            if header["type"] == "audio-chunk":
                audio += header["payload_length"]
        if header["type"] == last:
            return audio


async def fuzz(
    port: int,
    events: int,
    seed: int = 0,
    batch: int = 2_000,
    clients: int = 4,
    rss: Callable[[], float] | None = None,
) -> FuzzReport:
    """Send `events` fuzzed events over many connections, `clients` at a time, with a health
    check after every `batch` events."""
    rng = random.Random(seed)
    report = FuzzReport()
    sent = 0
    while sent < events:
        size = min(batch, events - sent)
        per_connection = [rng.randint(1, 60) for _ in range(size)]
        groups: list[list[bytes]] = []
        remaining = size
        for count in per_connection:
            if remaining <= 0:
                break
            count = min(count, remaining)
            groups.append([one_event(rng) for _ in range(count)])
            remaining -= count
        for start in range(0, len(groups), clients):
            await asyncio.gather(
                *(_one_connection(port, group, random.Random(rng.random())) for group in groups[start : start + clients])
            )
        report.connections += len(groups)
        sent += size
        report.events = sent
        await health_check(port, report.health_checks + 1, report)
        if rss is not None:
            report.rss_mib.append(rss())
    return report
