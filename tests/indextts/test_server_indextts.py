"""The real IndexTTS engine (tiny exported model) behind the real server and chain: its voices
in `info`, its audio on the wire, the cache, and the late-render path when it misses a deadline."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_indextts.audio import AudioFormat
from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions
from wyoming_indextts.synthesizer import ChainSettings

from tests.conftest import make_cache, read_until, running_server
from tests.indextts.conftest import voiced_clip, write_clip

TEXT = "欢迎回家。"
EN_TEXT = "Welcome home."
"""English text to a Chinese voice: its fallback is the bundled English voice (Chinese text would
have no fallback here, since the bundled Mandarin voices are not loaded in these tests)."""
# Seeded sampling, not greedy: on the tiny GPT greedy decoding often stops at once (no audio).
OPTIONS = IndexTTSOptions(do_sample=True, diffusion_steps=2, max_mel_tokens=16, seed=3)


@pytest.fixture(scope="module")
def indextts(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> IndexTTSEngine:
    voices = tmp_path_factory.mktemp("voices")
    write_clip(voices / "nainai.wav", voiced_clip(3.0, 22050, seed=4), 22050)
    (voices / "nainai.yaml").write_text("description: Grandma\nlanguages: [zh]\n", encoding="utf-8")
    engine = IndexTTSEngine.load(tiny_model_dir, voices, tmp_path_factory.mktemp("conditioning"), OPTIONS)
    yield engine
    engine.close()


async def ask(harness, text: str = TEXT):
    async with harness.client() as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="nainai")).event())
        return await read_until(client, "audio-stop", timeout=120)


async def test_cloned_voice_is_advertised_and_spoken_then_cached(indextts, piper, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cache = make_cache(tmp_path)
    engines = {"indextts": indextts, "piper": piper}
    async with running_server(engines, "nainai", cache=cache, chain=ChainSettings(default_deadline=120)) as harness:
        async with harness.client() as client:
            await client.write_event(Describe().event())
            info = Info.from_event((await read_until(client, "info")).events[-1])
        voices = {voice.name: voice for voice in info.tts[0].voices}
        assert voices["nainai"].languages == ["zh"] and voices["nainai"].description == "Grandma"

        first = await ask(harness)
        second = await ask(harness)
    assert first.types == ["audio-start", "audio-chunk", "audio-stop"]
    assert first.rate == 22050
    samples = np.frombuffer(first.audio, dtype="<i2")
    assert samples.size > 0 and np.abs(samples).max() > 0
    assert "Spoken by indextts voice nainai" in caplog.text
    assert second.audio == first.audio
    assert cache.stats.memory_hits == 1


async def test_missed_deadline_falls_back_and_the_late_render_serves_the_next_request(indextts, piper, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cache = make_cache(tmp_path)
    engines = {"indextts": indextts, "piper": piper}
    # No tiny model renders in a millisecond: the bundled voice speaks first.
    settings = ChainSettings(default_deadline=60, deadlines={"indextts": 0.001})
    async with running_server(engines, "nainai", cache=cache, chain=settings) as harness:
        fallback = await ask(harness, EN_TEXT)
        assert fallback.types == ["audio-start", "audio-chunk", "audio-stop"]
        assert fallback.rate == 22050
        assert "Spoken by piper voice en_US-joe-medium" in caplog.text

        voice = harness.catalogue.find("nainai")
        own_key = harness.synthesizer.key_for(voice, AudioFormat(rate=22050), EN_TEXT)
        async with asyncio.timeout(120):
            # The render finishes in its own thread: the entry, then the log line saying so.
            while own_key not in cache or "Late render by indextts cached" not in caplog.text:
                await asyncio.sleep(0.05)

        again = await ask(harness, EN_TEXT)
    # Served from the cache in the cloned voice, not the fallback's audio again.
    assert again.audio == cache.get(own_key)
    assert again.audio != fallback.audio


async def test_a_satellite_never_gives_up_at_the_default_settings(indextts, piper, tmp_path):
    """A client that behaves like a Voice PE satellite (abandons TTS when no audio arrived
    within 5 s) against the real tiny IndexTTS engine slowed past that on purpose, with the
    server's default chain settings: every reply starts in time (in the fallback voice), and
    the cloned voice's renders land in the cache for next time."""
    from tests.conftest import CountingEngine

    slowed = CountingEngine(indextts, name="indextts", delay=6.0)  # slower than a satellite waits
    engines = {"indextts": slowed, "piper": piper}
    cache = make_cache(tmp_path)
    texts = [EN_TEXT, "Good night."]
    async with running_server(engines, "nainai", cache=cache, chain=ChainSettings()) as harness:
        for text in texts:
            async with harness.client() as client:
                started = asyncio.get_running_loop().time()
                await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="nainai")).event())
                async with asyncio.timeout(5.0):  # the satellite's patience
                    while (event := await client.read_event()) is not None and event.type != "audio-chunk":
                        pass
                assert event is not None, "the satellite gave up: no audio within 5 s"
                first_audio = asyncio.get_running_loop().time() - started
                assert first_audio < ChainSettings().default_deadline + 2.0
                await read_until(client, "audio-stop", timeout=60)
        voice = harness.catalogue.find("nainai")
        keys = [harness.synthesizer.key_for(voice, AudioFormat(rate=22050), text) for text in texts]
        async with asyncio.timeout(180):
            while not all(key in cache for key in keys):
                await asyncio.sleep(0.1)
