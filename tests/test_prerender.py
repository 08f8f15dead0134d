"""Announcements pre-rendered in the cloned voice: rendered once in the background, pinned in
the disk cache, answered from it, never rendered again after a restart."""

from __future__ import annotations

import asyncio
import logging

from wyoming_indextts.cache import AudioCache, DiskCache
from wyoming_indextts.prerender import Prerenderer, PrerenderList
from wyoming_indextts.sentences import SplitterSettings

from .conftest import CountingEngine, assert_speech, read_until, running_server
from wyoming.tts import Synthesize, SynthesizeVoice

ANNOUNCEMENTS = [
    "The washing machine is done.",
    "Someone is at the front door. Please have a look.",
    "# a comment line",
    "",
    "Time to take out the recycling.",
]


def clone(piper) -> CountingEngine:
    # Slow on purpose: far slower than a satellite waits, as a cloned voice on a CPU is.
    return CountingEngine(piper, name="indextts", voice_name="grandma", languages=("en",), delay=0.3)


async def test_prerendered_announcements_answer_from_the_cache_in_the_cloned_voice(piper, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    listed = tmp_path / "announcements.txt"
    listed.write_text("\n".join(ANNOUNCEMENTS), encoding="utf-8")
    engine = clone(piper)
    engines = {"indextts": engine, "piper": piper}
    cache = AudioCache(32 << 20, DiskCache(tmp_path / "cache", 64 << 20))
    async with running_server(engines, "grandma", cache=cache) as harness:
        prerenderer = Prerenderer(harness.synthesizer, SplitterSettings())
        progress = await prerenderer.run([PrerenderList("grandma", listed)])
        units = ["The washing machine is done.", "Someone is at the front door.", "Please have a look.", "Time to take out the recycling."]
        assert engine.calls == units  # sentence by sentence, as a request splits them; comments skipped
        assert (progress.total, progress.rendered, progress.failed) == (4, 4, 0)
        assert "Pre-rendered 4 of 4 in grandma" in caplog.text
        for text in ANNOUNCEMENTS[:2] + ANNOUNCEMENTS[4:]:
            async with harness.client() as client:
                await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="grandma")).event())
                response = await read_until(client, "audio-stop")
            assert_speech(response.audio, response.rate, text)
        assert len(engine.calls) == 4  # every answer came from the cache, in the cloned voice
    # A restart: everything is found on disk; nothing is rendered again.
    restarted = clone(piper)
    cache = AudioCache(32 << 20, DiskCache(tmp_path / "cache", 64 << 20))
    async with running_server({"indextts": restarted, "piper": piper}, "grandma", cache=cache) as harness:
        progress = await Prerenderer(harness.synthesizer, SplitterSettings()).run([PrerenderList(None, listed)])
    assert restarted.calls == [] and progress.cached == 4


async def test_pinned_entries_survive_eviction_and_a_failing_text_is_reported_once(piper, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    listed = tmp_path / "list.txt"
    listed.write_text("The dishwasher is done.\nThe garage door is open.\n", encoding="utf-8")
    engine = clone(piper)
    engines = {"indextts": engine, "piper": piper}
    disk = DiskCache(tmp_path / "cache", 400_000)  # room for a few sentences only
    cache = AudioCache(1, disk)  # no memory cache: every answer must come from disk
    async with running_server(engines, "grandma", cache=cache) as harness:
        await Prerenderer(harness.synthesizer, SplitterSettings()).run([PrerenderList(None, listed)])
        voice = harness.catalogue.resolve("grandma")
        fmt = voice.output_format
        pinned = [harness.synthesizer.key_for(voice, fmt, t) for t in ("The dishwasher is done.", "The garage door is open.")]
        # Fill the cache far past its budget with other sentences, in the bundled voice.
        for number in range(12):
            async with harness.client() as client:
                await client.write_event(Synthesize(text=f"Filler sentence number {number} for the cache.").event())
                await read_until(client, "audio-stop")
        await harness.synthesizer.drain()
        assert disk.stats.disk_evictions > 0
        assert all(disk.get(key) is not None for key in pinned)
        # A text that cannot be spoken: reported once, then the run goes on.
        engine.fail_with = RuntimeError("model exploded")
        bad = tmp_path / "bad.txt"
        bad.write_text("A sentence the engine fails on.\n", encoding="utf-8")
        progress = await Prerenderer(harness.synthesizer, SplitterSettings()).run([PrerenderList(None, bad)])
        await asyncio.sleep(0.1)
    assert progress.failed == 1
    assert caplog.text.count("Cannot pre-render 'A sentence the engine fails on.'") == 1


def test_prerender_command_fills_the_cache_once_and_names_a_missing_file(tmp_path):
    import subprocess
    import sys

    listed = tmp_path / "list.txt"
    listed.write_text("The dishwasher is done.\n# not spoken\nGood morning.\n", encoding="utf-8")
    command = [sys.executable, "-m", "wyoming_indextts", "prerender", "--data-dir", str(tmp_path / "data"), str(listed)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "2 sentences, 0 already cached, 2 rendered, 0 failed" in first.stderr
    assert len(list((tmp_path / "data" / "cache").glob("*/*.pcm"))) == 2
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert "2 sentences, 2 already cached, 0 rendered" in again.stderr
    missing = subprocess.run([*command[:-1], str(tmp_path / "nope.txt")], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].endswith(f"no such file: '{tmp_path / 'nope.txt'}'")
