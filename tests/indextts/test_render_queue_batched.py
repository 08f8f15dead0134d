"""The render queue and the pre-renders render through batched decoding (tiny IndexTTS model,
seeded sampling): what lands in the cache is exactly what one-by-one renders give, and the
real server then answers those sentences from the cache in the cloned voice."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest
from wyoming.tts import Synthesize, SynthesizeVoice

from tests.conftest import make_cache, read_until, running_server
from tests.indextts.conftest import voiced_clip, write_clip
from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions
from wyoming_indextts.prerender import Prerenderer, PrerenderList
from wyoming_indextts.render_queue import QueueRenderer
from wyoming_indextts.sentences import SplitterSettings
from wyoming_indextts.service import open_ledger

pytestmark = pytest.mark.slow

# Seeded sampling: every render of a text draws the same, so one-by-one and batched compare.
OPTIONS = IndexTTSOptions(do_sample=True, seed=5, diffusion_steps=2, max_mel_tokens=40, max_text_tokens_per_segment=10)
TEXTS = ["Dinner is ready.", "The washing machine has finished its cycle and the door is open.", "Good morning!"]


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> IndexTTSEngine:
    voices = tmp_path_factory.mktemp("voices")
    write_clip(voices / "lena.wav", voiced_clip(3.0, 22050, seed=4), 22050)
    loaded = IndexTTSEngine.load(tiny_model_dir, voices, tmp_path_factory.mktemp("conditioning"), OPTIONS)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def alone(engine: IndexTTSEngine) -> dict[str, bytes]:
    return {text: b"".join(engine.synthesize(text, engine.voices()[0])) for text in TEXTS}


async def test_queued_sentences_render_in_one_batch_as_one_by_one_would(engine, alone, piper, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with running_server({"indextts": engine, "piper": piper}, "lena", cache=make_cache(tmp_path)) as harness:
        open_ledger(harness.service, tmp_path / "ledger.sqlite3", 100)
        synthesizer, voice = harness.synthesizer, harness.catalogue.find("lena")
        for text in TEXTS:
            synthesizer.queue.add(synthesizer.key_for(voice, voice.output_format, text), voice.name, text)
        renderer = QueueRenderer(synthesizer, synthesizer.queue, batch=len(TEXTS))
        renderer.start()
        try:
            async with asyncio.timeout(600):
                while synthesizer.queue.size():
                    await asyncio.sleep(0.2)
        finally:
            await renderer.stop()
        assert "Rendered 3 sentences in lena as one batch" in caplog.text
        assert synthesizer.queue.progress.rendered == 3
        for text in TEXTS:
            assert harness.cache.get(synthesizer.key_for(voice, voice.output_format, text)) == alone[text], text
            # The real server answers from the cache, in the cloned voice.
            async with harness.client() as client:
                await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="lena")).event())
                response = await read_until(client, "audio-stop")
            assert response.audio == alone[text], text


async def test_prerenders_render_in_batches_as_one_by_one_would(engine, alone, piper, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    async with running_server({"indextts": engine, "piper": piper}, "lena", cache=make_cache(tmp_path)) as harness:
        synthesizer, voice = harness.synthesizer, harness.catalogue.find("lena")
        prerenderer = Prerenderer(synthesizer, SplitterSettings(), batch=2)
        progress = await prerenderer.run([PrerenderList("lena", listed)])
        assert (progress.total, progress.rendered, progress.failed) == (3, 3, 0)
        assert "Rendered 2 sentences in lena as one batch" in caplog.text
        for text in TEXTS:
            assert harness.cache.get(synthesizer.key_for(voice, voice.output_format, text)) == alone[text], text


def test_a_batch_pauses_before_every_step_and_can_be_stopped_there(engine, alone):
    voice = engine.voices()[0]
    pauses: list[str] = []
    # Which stage paused: the function that called the hook.
    where = lambda: pauses.append(sys._getframe(1).f_code.co_name)  # noqa: E731
    assert engine.synthesize_batch(TEXTS, voice, pause=where) == [alone[text] for text in TEXTS]
    segments = sum(len(engine.text_segments(text)) for text in TEXTS)
    # Before each diffusion step of every segment (those with codes), and before each GPT
    # prefill and decode step.
    assert 0 < pauses.count("sample") <= segments * OPTIONS.diffusion_steps
    assert pauses.count("sample") % OPTIONS.diffusion_steps == 0
    assert pauses.count("generate_batch") > segments
    assert set(pauses) == {"sample", "generate_batch"}

    class Stop(Exception):
        pass

    def stop_at_the_third() -> None:
        pauses.append("")
        if len(pauses) >= 3:
            raise Stop

    pauses.clear()
    with pytest.raises(Stop):
        engine.synthesize_batch(TEXTS, voice, pause=stop_at_the_third)
    assert len(pauses) == 3


async def test_a_background_batch_waits_while_a_live_render_works(engine, alone, piper, tmp_path):
    async with running_server({"indextts": engine, "piper": piper}, "lena", cache=make_cache(tmp_path)) as harness:
        synthesizer, voice = harness.synthesizer, harness.catalogue.find("lena")
        gate = synthesizer._gate
        gate.enter_live()  # a live render is working
        batch = asyncio.create_task(synthesizer.render_many_for_cache(TEXTS, voice))
        await asyncio.sleep(3)
        assert not batch.done()
        gate.leave_live()
        assert await asyncio.wait_for(batch, 600) == ["rendered"] * len(TEXTS)
