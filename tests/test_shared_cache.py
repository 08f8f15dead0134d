"""The shared cache on a real `redis-server` (Debian package redis-server) on a loopback port:
instances share entries, damaged or misfiled entries are never served, and a store that dies
or stalls costs no response."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import subprocess
import time

import pytest

from wyoming_indextts.cache import AudioCache
from wyoming_indextts.shared_cache import KEY_PREFIX, RedisCache, pack_entry, unpack_entry

from .conftest import CountingEngine, assert_speech, running_server
from .test_cli import free_port, run_cli, server_process
from .test_remote import ask

redis = pytest.importorskip("redis", reason="the redis client is missing: pip install 'wyoming-indextts[redis]'")
if shutil.which("redis-server") is None:
    pytest.skip("redis-server is not installed (Debian package redis-server; script/test installs it in CI)", allow_module_level=True)

TEXT = "The garage door is open."
OTHER = "The kettle has boiled."
RETRY = 0.5


class RedisServer:
    def __init__(self, tmp_path) -> None:
        self.port = free_port()
        self.dir = tmp_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"],
            stdout=subprocess.DEVNULL,
        )
        client = self.client()
        give_up = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert self.process.poll() is None, "redis-server exited"
                assert time.monotonic() < give_up, "redis-server did not answer"
                time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def keys(self) -> list[bytes]:
        return sorted(self.client().keys(KEY_PREFIX + "*"))

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def store(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.send_signal(signal.SIGCONT)
        server.kill()


def shared(store: RedisServer) -> AudioCache:
    return AudioCache(32 << 20, RedisCache(store.url, retry=RETRY))


def bundled(piper) -> CountingEngine:
    """The real bundled voice, counting its renders."""
    return CountingEngine(piper)


async def test_two_instances_share_what_either_rendered(piper, store):
    first, second = bundled(piper), bundled(piper)
    async with running_server({"piper": first}, cache=shared(store)) as a, running_server({"piper": second}, cache=shared(store)) as b:
        spoken = await ask(a.port, TEXT)
        await a.synthesizer.drain()
        heard = await ask(b.port, TEXT)
        assert first.calls == [TEXT] and second.calls == []
        assert heard.audio == spoken.audio
        assert_speech(heard.audio, 22050, TEXT)
        assert b.cache.stats.disk_hits == 1
    [key] = store.keys()
    assert unpack_entry(key.decode()[len(KEY_PREFIX):], store.client().get(key)) == spoken.audio


async def test_a_damaged_or_misfiled_entry_is_dropped_and_rendered_again(piper, store, caplog):
    engine = bundled(piper)
    async with running_server({"piper": engine}, cache=shared(store)) as writer:
        await ask(writer.port, TEXT)
        await ask(writer.port, OTHER)
        await writer.synthesizer.drain()
    client = store.client()
    first_key, second_key = store.keys()
    intact = client.get(first_key)
    client.set(second_key, intact)  # an intact entry, filed under another sentence's name
    client.set(first_key, intact[:-100] + bytes([intact[-100] ^ 1]) + intact[-99:])  # one flipped bit

    engine.calls.clear()
    caplog.set_level(logging.WARNING)
    cache = shared(store)
    async with running_server({"piper": engine}, cache=cache) as reader:
        for text in (TEXT, OTHER):
            response = await ask(reader.port, text)
            assert_speech(response.audio, 22050, text)
        await reader.synthesizer.drain()
    assert sorted(engine.calls) == sorted([TEXT, OTHER])  # neither was served from the store
    assert cache.stats.corrupt_dropped == 2
    assert caplog.text.count("Dropping corrupted or misfiled shared cache entry") == 2
    # Rendered again and stored again, intact.
    for key in store.keys():
        assert unpack_entry(key.decode()[len(KEY_PREFIX):], client.get(key)) is not None


def test_entry_checks_catch_each_kind_of_damage():
    key, other = "a" * 64, "b" * 64
    entry = pack_entry(key, b"pcm" * 100)
    assert unpack_entry(key, entry) == b"pcm" * 100
    assert unpack_entry(other, entry) is None  # misfiled
    assert unpack_entry(key, entry[:-1]) is None  # torn
    assert unpack_entry(key, entry[:-1] + b"x") is None  # flipped
    assert unpack_entry(key, entry[:10]) is None  # shorter than a header
    assert unpack_entry(key, b"XXXX" + entry[4:]) is None  # not an entry of ours


async def test_a_store_that_dies_or_stalls_costs_no_response(piper, store, caplog):
    caplog.set_level(logging.INFO)
    engine = bundled(piper)
    cache = shared(store)
    async with running_server({"piper": engine}, cache=cache) as front:
        await ask(front.port, TEXT)
        await front.synthesizer.drain()
        assert len(store.keys()) == 1

        store.kill()
        texts = ["The mail has arrived.", "The car is charged.", "The oven is preheated."]
        for text in texts:
            response = await ask(front.port, text)
            assert_speech(response.audio, 22050, text)
        assert (await ask(front.port, TEXT)).audio  # still in memory
        await front.synthesizer.drain()
        assert caplog.text.count("skipping it, trying again") == 1  # one line, not one per request

        store.start()  # empty: it ran without persistence
        await asyncio.sleep(RETRY)
        await ask(front.port, "The dryer is done.")
        await front.synthesizer.drain()
        assert "answers again" in caplog.text
        assert len(store.keys()) == 1  # written again once it was back

        assert store.process is not None
        store.process.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
        caplog.clear()
        response = await ask(front.port, "The window is open.")
        assert_speech(response.audio, 22050, "The window is open.")
        await front.synthesizer.drain()
        assert caplog.text.count("skipping it, trying again") == 1


async def test_the_command_line_shares_its_cache_on_redis(store, tmp_path):
    flags = ("--data-dir", str(tmp_path / "data"), "--cache-redis", store.url)
    async with server_process(tmp_path / "server.log", *flags) as port:
        response = await ask(port, TEXT)
    assert f"Shared cache on {store.url}" in (tmp_path / "server.log").read_text()
    [key] = store.keys()
    assert unpack_entry(key.decode()[len(KEY_PREFIX):], store.client().get(key)) == response.audio
    assert not (tmp_path / "data" / "cache").exists()  # the store took the disk's place


def test_a_bad_redis_url_is_one_line():
    result = run_cli("--cache-redis", "http://host:6379")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--cache-redis" in result.stderr


async def test_a_key_of_the_wrong_type_is_a_miss_not_an_outage(piper, store, caplog):
    """A hash under the project's prefix where an entry should be (issue 21, item 9): reading it
    is refused with WRONGTYPE, which used to switch the whole store off for `retry` seconds."""
    caplog.set_level(logging.INFO)
    engine = bundled(piper)
    async with running_server({"piper": engine}, cache=shared(store)) as seeding:
        await ask(seeding.port, TEXT)
        await seeding.synthesizer.drain()
    client = store.client()
    [key] = store.keys()
    client.delete(key)
    client.hset(key, "not", "audio")  # someone else's structure under our name
    engine.calls.clear()
    cache = AudioCache(1, RedisCache(store.url, retry=60.0))  # no memory cache: each request asks the store
    async with running_server({"piper": engine}, cache=cache) as front:
        for _ in range(2):
            response = await ask(front.port, TEXT)
            assert_speech(response.audio, 22050, TEXT)
            await front.synthesizer.drain()
        other = await ask(front.port, OTHER)
        await front.synthesizer.drain()
        assert_speech(other.audio, 22050, OTHER)
        assert (await ask(front.port, OTHER)).audio == other.audio
    assert cache.disk.available  # never skipped: the store is up
    assert caplog.text.count("WRONGTYPE") == 1 and "skipping it" not in caplog.text
    # The first render replaced the hash with an intact entry; the second request was a hit.
    assert unpack_entry(key.decode()[len(KEY_PREFIX):], client.get(key)) == response.audio
    assert engine.calls == [TEXT, OTHER]
