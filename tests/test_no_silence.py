"""No client can silence the house: each test is a way a client once muted the server for
everyone (issue "No client can silence the house"), over real sockets against the real server
and the real bundled voice.

One test per way a client once muted the server, kept together.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_indextts.breaker import BreakerState
from wyoming_indextts.handler import HandlerSettings
from wyoming_indextts.protocol import ReaderLimits
from wyoming_indextts.synthesizer import ChainSettings

from .conftest import CountingEngine, assert_speech, make_cache, read_until, running_server

LONG_REPLY = " ".join(
    f"Sentence number {n} of a long reply, long enough that sending it takes a while." for n in range(1, 13)
)


def clone(piper, **kwargs) -> CountingEngine:
    return CountingEngine(piper, name="indextts", voice_name="clone", languages=("en",), **kwargs)


async def speak(harness, text: str, voice: str | None = None, timeout: float = 60.0):
    async with harness.client() as client:
        chosen = SynthesizeVoice(name=voice) if voice else None
        await client.write_event(Synthesize(text=text, voice=chosen).event())
        return await read_until(client, "audio-stop", timeout)


async def describe_seconds(harness) -> float:
    started = time.monotonic()
    async with harness.client() as client:
        await client.write_event(Describe().event())
        await read_until(client, "info", timeout=30)
    return time.monotonic() - started


@asynccontextmanager
async def raw_connection(port: int, receive_buffer: int = 0) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A plain TCP connection; with `receive_buffer`, a tiny kernel buffer so that a client
    that stops reading makes the server's writes block within a few kilobytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=receive_buffer or 1 << 16)
    try:
        yield reader, writer
    finally:
        writer.transport.abort()


def small_send_buffers(harness) -> None:
    """Accepted sockets inherit the listener's send buffer: a small one makes the server's
    writes to a client that reads slowly or not at all block within kilobytes, as they would
    over a congested Wi-Fi link, instead of after the ~2.8 MB loopback's buffers take."""
    harness.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)


def send_line(writer: asyncio.StreamWriter, header: dict, data: bytes = b"") -> None:
    writer.write(json.dumps(header).encode() + b"\n" + data)


async def next_event_type(reader: asyncio.StreamReader, timeout: float = 30.0) -> str:
    """Read one event (skipping its data and payload) and return its type."""
    line = await asyncio.wait_for(reader.readline(), timeout)
    assert line, "the server closed the connection"
    header = json.loads(line)
    extra = header.get("data_length") or 0
    extra += header.get("payload_length") or 0
    if extra:
        await asyncio.wait_for(reader.readexactly(extra), timeout)
    return header["type"]


async def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


# --- 1. render slots --------------------------------------------------------------------------


async def test_clients_leaving_mid_reply_free_their_render_slots(piper):
    """Two satellites hang up while their reply is being sent (Voice PE does at 5 s). With the
    slots held by unclosed generators, nobody could be answered until the garbage collector
    ran; the collector is off here to show that nothing waits for it."""
    gc.disable()
    try:
        async with running_server({"piper": piper}, max_concurrent=2) as harness:
            small_send_buffers(harness)
            for _ in range(2):
                async with raw_connection(harness.port) as (reader, writer):
                    send_line(writer, Synthesize(text=LONG_REPLY).event().to_dict())
                    assert await next_event_type(reader) == "audio-start"
                    assert await next_event_type(reader) == "audio-chunk"
            slots = harness.synthesizer._slots
            await wait_for(lambda: slots._value == 2, 20, "both render slots are free again")
            response = await speak(harness, "The front door is open.", timeout=20)
            assert_speech(response.audio, response.rate, "The front door is open.")
    finally:
        gc.enable()


async def test_clients_that_stop_reading_hold_no_render_slot(piper, caplog):
    """Two clients ask for long replies and never read: a third is answered all the same, and
    a client that reads nothing for the write timeout is disconnected."""
    caplog.set_level(logging.DEBUG, logger="wyoming_indextts.handler")
    settings = HandlerSettings(write_timeout=1.0)
    async with running_server({"piper": piper}, max_concurrent=2, settings=settings) as harness:
        small_send_buffers(harness)
        stalled = []
        for _ in range(2):
            connection = raw_connection(harness.port, receive_buffer=4096)
            reader, writer = await connection.__aenter__()
            stalled.append((connection, reader))
            send_line(writer, Synthesize(text=LONG_REPLY).event().to_dict())
        await asyncio.sleep(1.0)  # both replies are rendering and filling their sockets
        response = await speak(harness, "Motion in the garden.", timeout=30)
        assert_speech(response.audio, response.rate, "Motion in the garden.")
        # The stalled clients are cut off once their audio sat unread for the write timeout.
        gave_up = lambda: sum("read nothing for 1 s" in r.getMessage() for r in caplog.records) == 2  # noqa: E731
        await wait_for(gave_up, 180, "the server gave up on both stalled clients")
        for connection, reader in stalled:
            with pytest.raises(ConnectionError):
                async with asyncio.timeout(30):
                    while await reader.read(1 << 16):
                        pass  # drain what was sent before the cut
                    raise ConnectionResetError
            await connection.__aexit__(None, None, None)
        await wait_for(lambda: harness.synthesizer._slots._value == 2, 20, "the slots are free")


async def test_waiting_for_a_render_slot_counts_against_the_deadline(piper):
    """The one render slot is held by a live render that hangs (within its own long deadline).
    A request for the cloned voice waits for the slot only as long as its deadline, never
    starts the clone after the wait, and the bundled voice, last in the chain, speaks over the
    limit rather than leave the house silent."""
    primary = clone(piper)
    slow = CountingEngine(piper, name="slow", voice_name="slowpoke", languages=("en",))
    slow.hang.set()
    chain = ChainSettings(default_deadline=1.0, deadlines={"slow": 60.0}, sentence_cap=90)
    engines = {"indextts": primary, "slow": slow, "piper": piper}
    try:
        async with running_server(engines, "clone", max_concurrent=1, chain=chain) as harness:
            hung = asyncio.create_task(speak(harness, "This one hangs.", "slowpoke", timeout=120))
            await wait_for(lambda: slow.calls, 10, "the hanging render holds the slot")
            started = time.monotonic()
            response = await speak(harness, "The oven is preheated.", "clone", timeout=60)
            waited = time.monotonic() - started
            assert_speech(response.audio, response.rate, "The oven is preheated.")
            assert primary.calls == []  # the clone never started: its deadline went on the wait
            assert waited < 30  # long before the hung render's own deadline ends
            # Waiting for a slot is nobody's fault: no breaker counted it.
            assert harness.synthesizer.breakers["indextts"]._failures == 0
            slow.release.set()
            await hung
    finally:
        slow.release.set()


class ConcurrencyCounter(CountingEngine):
    """Counts how many renders run at the same moment."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def synthesize(self, text, voice, *, opening=True):
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            yield from super().synthesize(text, voice, opening=opening)
        finally:
            with self._lock:
                self.running -= 1


async def test_the_last_step_beyond_the_limit_takes_one_spare_slot_not_one_per_client(piper):
    """While the only slot hangs, the bundled voice still speaks, but a crowd of requests gets
    one render beyond the limit at a time, not one each."""
    slow = CountingEngine(piper, name="slow", voice_name="slowpoke", languages=("en",))
    slow.hang.set()
    bundled = ConcurrencyCounter(piper, delay=0.5)
    chain = ChainSettings(default_deadline=2.0, deadlines={"slow": 60.0}, sentence_cap=90)
    try:
        async with running_server({"slow": slow, "piper": bundled}, "slowpoke", max_concurrent=1, chain=chain) as harness:
            hung = asyncio.create_task(speak(harness, "This one hangs.", "slowpoke", timeout=120))
            await wait_for(lambda: slow.calls, 10, "the hanging render holds the slot")
            texts = [f"Crowd member number {n} asks." for n in range(4)]
            responses = await asyncio.gather(*(speak(harness, text, "en_US-joe-medium", timeout=90) for text in texts))
            for text, response in zip(texts, responses):
                assert_speech(response.audio, response.rate, text)
            assert bundled.most == 1
            slow.release.set()
            await hung
    finally:
        slow.release.set()


# --- 3. the breaker ---------------------------------------------------------------------------


async def test_text_without_audio_never_opens_a_breaker(piper):
    """Characters the bundled voice renders as nothing used to open its breaker, after which
    every client got silence for the cool-down."""
    chain = ChainSettings(breaker_failures=3, breaker_cooldown=60)
    async with running_server({"piper": piper}, chain=chain) as harness:
        for text in ["٣", "𝟘", "ᎠᎡ", "٣", "𝟘"]:
            await speak(harness, text)
        assert harness.synthesizer.breakers["piper"].state is BreakerState.CLOSED
        response = await speak(harness, "The garage door is closed.")
        assert_speech(response.audio, response.rate, "The garage door is closed.")


async def test_the_last_engine_of_the_chain_is_never_skipped(piper):
    async with running_server({"piper": piper}) as harness:
        breaker = harness.synthesizer.breakers["piper"]
        for _ in range(breaker.failure_threshold):
            breaker.record_failure("made to fail by the test")
        assert breaker.state is BreakerState.OPEN
        response = await speak(harness, "Good night.")
        assert response.errors == []
        assert_speech(response.audio, response.rate, "Good night.")
        assert breaker.state is BreakerState.CLOSED


async def test_a_trial_whose_client_leaves_does_not_keep_the_engine_skipped(piper):
    primary = clone(piper)
    primary.fail_with = RuntimeError("broken for now")
    chain = ChainSettings(default_deadline=20, breaker_failures=1, breaker_cooldown=0.5)
    engines = {"indextts": primary, "piper": piper}
    async with running_server(engines, "clone", chain=chain) as harness:
        await speak(harness, "The kettle has boiled.", "clone")
        breaker = harness.synthesizer.breakers["indextts"]
        assert breaker.state is BreakerState.OPEN
        await asyncio.sleep(0.6)
        primary.fail_with = None
        primary.delay = 1.5  # only the trial is slow: its client hangs up while it renders
        # The trial's client hangs up while the engine is still rendering.
        async with raw_connection(harness.port) as (reader, writer):
            send_line(writer, Synthesize(text="Lights out.", voice=SynthesizeVoice(name="clone")).event().to_dict())
            await wait_for(lambda: primary.calls[-1] == "Lights out.", 10, "the trial started")
        await asyncio.sleep(0.3)
        assert breaker.state is BreakerState.HALF_OPEN
        primary.delay = 0.0
        calls = len(primary.calls)
        response = await speak(harness, "The post has arrived.", "clone")
        assert primary.calls[calls:] == ["The post has arrived."]  # tried again, not skipped
        assert_speech(response.audio, response.rate, "The post has arrived.")
        assert breaker.state is BreakerState.CLOSED


# --- 4. long text off the event loop ------------------------------------------------------------


@pytest.mark.parametrize("text", ["Dr. " * 10_000, "word " * 12_000, "x" * 60_000])
async def test_long_text_without_sentence_ends_does_not_block_other_clients(piper, text):
    async with running_server({"piper": piper}) as harness:
        async with raw_connection(harness.port) as (reader, writer):
            send_line(writer, Synthesize(text=text).event().to_dict())
            await writer.drain()
            await asyncio.sleep(0.05)
            assert await describe_seconds(harness) < 1.0  # Home Assistant's describe timeout
        # The client left: its reply stops, and the server answers a fresh sentence.
        response = await speak(harness, "Back to normal.", timeout=60)
        assert_speech(response.audio, response.rate, "Back to normal.")


# --- 6, 7. malformed events and wrong field types --------------------------------------------


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type": "synthesize", "data_length": Infinity}\n',
        b'{"type": "synthesize", "data_length": -Infinity}\n',
        b'{"type": "synthesize", "data_length": 1e999}\n',
        b'{"type": "synthesize", "payload_length": NaN}\n',
        b'{"type": "synthesize", "data_length": "12"}\n',
        ('{"type": "synthesize", "data": {"text": ' + _deep(20_000) + "}}\n").encode(),  # under the line limit
        b'{"type": "synthesize", "data_length": 100007}\n{"x": ' + _deep(50_000).encode() + b"}",
    ],
    ids=["inf", "-inf", "1e999", "nan", "string", "deep-header", "deep-data"],
)
async def test_malformed_headers_get_an_error_event_and_keep_the_connection(piper, raw):
    async with running_server({"piper": piper}) as harness, raw_connection(harness.port) as (reader, writer):
        writer.write(raw)
        assert await next_event_type(reader) == "error"
        send_line(writer, Describe().event().to_dict())
        assert await next_event_type(reader) == "info"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "synthesize", "data": {"text": "Hi.", "voice": 5}}, "'voice' to be an object"),
        ({"type": "synthesize", "data": {"text": "Hi.", "voice": {"name": 7}}}, "'voice.name' to be a string"),
        ({"type": "synthesize", "data": {"text": ["Hi."]}}, "'text' to be a string, got list"),
        ({"type": "synthesize", "data": {}}, "'text' to be a string, got null"),
        ({"type": "synthesize-chunk", "data": {}}, "'text' to be a string, got null"),
    ],
)
async def test_wrong_field_types_get_a_message_a_person_can_act_on_and_one_log_line(piper, caplog, event, expected):
    caplog.set_level(logging.DEBUG)
    async with running_server({"piper": piper}) as harness, harness.client() as client:
        if event["type"] == "synthesize-chunk":
            await client.write_event(Event(type="synthesize-start"))
        await client.write_event(Event(type=event["type"], data=event["data"]))
        response = await read_until(client, "error", timeout=30)
        assert response.events[-1].data["code"] == "bad-request"
        message = response.errors[-1]
        assert expected in message
        assert "Error" not in message and "Traceback" not in message  # no Python internals
    assert not [r for r in caplog.records if r.exc_info], "a bad request logged a traceback"


async def test_null_voice_and_lone_surrogates_are_spoken_with_the_default_voice(piper, tmp_path):
    cache = make_cache(tmp_path)
    async with running_server({"piper": piper}, cache=cache) as harness:
        async with raw_connection(harness.port) as (reader, writer):
            # json.dumps escapes the lone surrogate as \ud800, as a client's JSON library would.
            send_line(writer, {"type": "synthesize", "data": {"text": "Lights \ud800on.", "voice": None}})
            types = [await next_event_type(reader, timeout=60)]
            while types[-1] != "audio-stop":
                types.append(await next_event_type(reader, timeout=60))
        assert "error" not in types and "audio-chunk" in types
        await harness.synthesizer.drain()
    assert cache.disk is not None and cache.disk.total_bytes() > 0  # cached, not dropped


# --- 8. the sentence cap is the engine's time ----------------------------------------------------


async def test_a_slow_reader_gets_every_sentence_within_the_sentence_cap(piper):
    """A client reading at about 20 KB/s takes longer to receive a sentence than the cap allows
    an engine to render one; that must not turn delivered sentences into failures."""
    text = "The living room lights are now off. The bedroom heating is set to twenty degrees. Good night."
    chain = ChainSettings(sentence_cap=4.0)
    async with running_server({"piper": piper}, chain=chain) as harness:
        small_send_buffers(harness)
        async with raw_connection(harness.port, receive_buffer=4096) as (reader, writer):
            send_line(writer, Synthesize(text=text).event().to_dict())
            started = time.monotonic()
            types: list[str] = []
            while not types or types[-1] != "audio-stop":
                types.append(await next_event_type(reader, timeout=60))
                await asyncio.sleep(0.1)  # 2 KB chunks, 10 a second
            reading = time.monotonic() - started
    assert "error" not in types
    assert reading > 2 * chain.sentence_cap  # the reading really was slower than the cap


# --- 9. a cache file is bound to its key --------------------------------------------------------


async def test_another_entrys_file_under_this_name_is_never_served(piper, tmp_path):
    first, second = "The laundry is dry.", "Someone is at the door, please have a look."
    async with running_server({"piper": piper}, cache=make_cache(tmp_path)) as harness:
        await speak(harness, second)
        planted = (await speak(harness, first)).audio
        await harness.synthesizer.drain()
        voice = harness.catalogue.resolve(None)
        fmt = voice.output_format
        keys = [harness.synthesizer.key_for(voice, fmt, text) for text in (first, second)]
    disk = make_cache(tmp_path).disk
    assert disk is not None
    disk.path_for(keys[1]).write_bytes(disk.path_for(keys[0]).read_bytes())  # a complete, valid file
    cache = make_cache(tmp_path)
    async with running_server({"piper": piper}, cache=cache) as harness:
        served = (await speak(harness, second)).audio
    assert cache.stats.corrupt_dropped == 1
    assert served != planted  # re-rendered, not the other sentence's audio
    assert_speech(served, 22050, second)


# --- 10. idle and half-sent connections -----------------------------------------------------------


async def test_idle_and_half_sent_connections_are_closed_but_a_waiting_client_is_not(piper):
    limits = ReaderLimits(idle_timeout=1.0, event_timeout=1.0)
    primary = clone(piper, delay=1.5)  # longer than the idle timeout
    engines = {"indextts": primary, "piper": piper}
    chain = ChainSettings(default_deadline=20)
    async with running_server(engines, "clone", chain=chain, settings=HandlerSettings(limits=limits)) as harness:
        async with raw_connection(harness.port) as (idle_reader, _):
            assert await asyncio.wait_for(idle_reader.read(), 10) == b""  # closed by the server
        async with raw_connection(harness.port) as (half_reader, half_writer):
            half_writer.write(b'{"type": "synthesize", "data_length": 100}\n{"text": ')
            assert await asyncio.wait_for(half_reader.read(), 10) == b""
        response = await speak(harness, "Still here.", "clone", timeout=30)
        assert_speech(response.audio, response.rate, "Still here.")
