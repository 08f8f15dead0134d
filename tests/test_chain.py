"""Never silent: the engine chain with deadlines, the breaker, late renders and Sambert, with
real engines behind it (the bundled voice, the Sambert client against the NLS stand-in, and a
primary engine made slow, hung or broken on purpose)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from wyoming_indextts.service import DEFAULT_FALLBACK_VOICES, open_ledger
from wyoming_indextts.audio import AudioFormat
from wyoming_indextts.breaker import Breaker, BreakerState
from wyoming_indextts.engines.base import EngineError
from wyoming_indextts.engines.sambert import SambertEngine
from wyoming_indextts.synthesizer import ChainSettings

from .conftest import CountingEngine, assert_speech, make_cache, read_until, running_server
from .nls_standin import NlsStandIn, expected_pcm

ZH_TEXT = "门口有人按门铃，请注意查看。"
ZH_SHORT = "欢迎回家。"
"""For the bundled Mandarin voice, which takes seconds a sentence on a busy CPU."""
EN_TEXT = "Someone is at the front door."


@pytest.fixture
def nls():
    with NlsStandIn() as server:
        yield server


@pytest.fixture
def sambert(nls):
    engine = SambertEngine(nls.settings())
    yield engine
    engine.close()


def chain(**overrides) -> ChainSettings:
    settings = {"fallbacks": ["sambert", "piper"], "default_deadline": 5.0, "sentence_cap": 30.0}
    return ChainSettings(**{**settings, **overrides})


def clone(piper, language: str, **kwargs) -> CountingEngine:
    """An IndexTTS stand-in: a cloned voice of the given language (the audio is the real
    bundled voice, so a response it speaks is real speech)."""
    return CountingEngine(piper, name="indextts", voice_name=f"clone-{language}", languages=(language,), **kwargs)


async def ask(harness, text: str, voice: str) -> object:
    async with harness.client() as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())
        return await read_until(client, "audio-stop")


def spoken_by(caplog) -> list[str]:
    return [r.getMessage().split(":")[0] for r in caplog.records if r.getMessage().startswith("Spoken by")]


async def test_english_primary_raising_falls_back_to_the_bundled_voice(piper, sambert, nls, caplog):
    primary = clone(piper, "en")
    primary.fail_with = EngineError("model exploded")
    engines = {"indextts": primary, "sambert": sambert, "piper": piper}
    caplog.set_level(logging.INFO)
    async with running_server(engines, "clone-en", chain=chain(), fallback_voices=DEFAULT_FALLBACK_VOICES) as harness:
        response = await ask(harness, EN_TEXT, "clone-en")
    assert response.types == ["audio-start", "audio-chunk", "audio-stop"]
    assert_speech(response.audio, 22050, EN_TEXT)
    assert primary.calls == [EN_TEXT]
    assert nls.tts_requests == []  # English goes to the bundled English voice, not the cloud
    assert spoken_by(caplog) == ["Spoken by piper voice en_US-joe-medium"]
    assert any("model exploded" in r.getMessage() for r in caplog.records)


async def test_mandarin_primary_failing_asks_sambert_for_mandarin_in_the_announced_format(piper, sambert, nls, caplog):
    primary = clone(piper, "zh")
    primary.fail_with = RuntimeError("ONNX Runtime: out of memory")
    engines = {"indextts": primary, "sambert": sambert, "piper": piper}
    caplog.set_level(logging.INFO)
    async with running_server(engines, "clone-zh", chain=chain(), fallback_voices=DEFAULT_FALLBACK_VOICES) as harness:
        response = await ask(harness, ZH_TEXT, "clone-zh")
    assert response.types == ["audio-start", "audio-chunk", "audio-stop"]
    # Sambert answers 16 kHz; the response announced the clone's 22050 Hz and keeps it.
    assert {e.data["rate"] for e in response.events if e.type in ("audio-start", "audio-chunk")} == {22050}
    assert [r.params["voice"] for r in nls.tts_requests] == ["xiaoyun"]
    expected_seconds = len(expected_pcm(ZH_TEXT, 16000)) / 2 / 16000
    assert len(response.audio) / 2 / 22050 == pytest.approx(expected_seconds, abs=0.01)
    assert spoken_by(caplog) == ["Spoken by sambert voice sambert-xiaoyun"]


@pytest.mark.parametrize("garbage", ["not audio", b"", 42])
async def test_primary_returning_no_or_malformed_audio_passes_the_sentence_on(piper, sambert, garbage, caplog):
    primary = clone(piper, "en")
    primary.garbage = garbage
    engines = {"indextts": primary, "sambert": sambert, "piper": piper}
    caplog.set_level(logging.INFO)
    async with running_server(engines, "clone-en", chain=chain(), fallback_voices=DEFAULT_FALLBACK_VOICES) as harness:
        response = await ask(harness, EN_TEXT, "clone-en")
    assert response.types == ["audio-start", "audio-chunk", "audio-stop"]
    assert_speech(response.audio, 22050, EN_TEXT)
    assert spoken_by(caplog) == ["Spoken by piper voice en_US-joe-medium"]


async def test_hung_primary_hands_over_at_the_deadline_and_its_late_render_is_cached(piper, sambert, nls, tmp_path, caplog):
    primary = clone(piper, "zh")
    primary.hang.set()
    engines = {"indextts": primary, "sambert": sambert, "piper": piper}
    cache = make_cache(tmp_path)
    caplog.set_level(logging.INFO)
    settings = chain(default_deadline=1.0)
    async with running_server(engines, "clone-zh", cache=cache, chain=settings) as harness:
        fallback = await ask(harness, ZH_TEXT, "clone-zh")
        assert spoken_by(caplog) == ["Spoken by sambert voice sambert-xiaoyun"]
        assert harness.synthesizer.late_render_count() == 1

        fmt = AudioFormat(rate=22050)
        own_key = harness.synthesizer.key_for(primary.voice, fmt, ZH_TEXT)
        assert own_key not in cache  # the fallback's audio is not filed under the clone

        primary.release.set()  # the slow render finishes in the background...
        async with asyncio.timeout(30):
            while own_key not in cache:
                await asyncio.sleep(0.05)
        assert harness.synthesizer.late_render_count() == 0

        again = await ask(harness, ZH_TEXT, "clone-zh")
    # ...and the next request is answered from the cache in the cloned voice.
    assert primary.calls == [ZH_TEXT]
    assert len(nls.tts_requests) == 1
    assert again.audio == cache.get(own_key)
    assert again.audio != fallback.audio
    assert again.types == ["audio-start", "audio-chunk", "audio-stop"]


async def test_late_renders_beyond_the_bound_are_not_kept_but_queued(piper, tmp_path, caplog):
    primary = clone(piper, "en")
    primary.hang.set()
    engines = {"indextts": primary, "piper": piper}
    caplog.set_level(logging.INFO)
    settings = chain(default_deadline=0.5, late_renders=1)
    async with running_server(engines, "clone-en", cache=make_cache(tmp_path), chain=settings) as harness:
        open_ledger(harness.service, tmp_path / "ledger.sqlite3", 100)
        await ask(harness, "Timer finished.", "clone-en")
        await ask(harness, "The dishwasher is done.", "clone-en")
        assert harness.synthesizer.late_render_count() == 1
        await harness.service.drain()
        assert {e.text for e in harness.synthesizer.queue.entries()} == {"Timer finished.", "The dishwasher is done."}
        primary.release.set()
    assert any("Not keeping the late render of 'The dishwasher is done.'" in r.getMessage() for r in caplog.records)


async def test_sambert_unreachable_ends_with_the_bundled_mandarin_voice(piper, kokoro, nls, caplog):
    settings = nls.settings()
    nls.close()  # nothing listens on its port any more
    sambert = SambertEngine(settings)
    primary = clone(piper, "zh")
    primary.fail_with = EngineError("broken")
    engines = {"indextts": primary, "sambert": sambert, "kokoro": kokoro, "piper": piper}
    caplog.set_level(logging.INFO)
    async with running_server(engines, "clone-zh", chain=chain(default_deadline=120.0, sentence_cap=300.0)) as harness:
        response = await ask(harness, ZH_SHORT, "clone-zh")
    assert response.types == ["audio-start", "audio-chunk", "audio-stop"]
    assert len(response.audio) > 22050  # the bundled Mandarin voice read it: not silence
    assert spoken_by(caplog) == ["Spoken by kokoro voice kokoro-zf_xiaoxiao"]


async def test_sambert_throttled_ends_with_the_bundled_mandarin_voice(piper, kokoro, sambert, nls, caplog):
    nls.throttle_tts()
    engines = {"sambert": sambert, "kokoro": kokoro, "piper": piper}
    caplog.set_level(logging.INFO)
    async with running_server(engines, "sambert-xiaoyun", chain=chain(default_deadline=120.0, sentence_cap=300.0)) as harness:
        response = await ask(harness, ZH_SHORT, "sambert-xiaoyun")
    assert response.types == ["audio-start", "audio-chunk", "audio-stop"]
    assert response.rate == 16000  # the requested Sambert voice's format, kept for Kokoro's audio
    assert len(response.audio) > 16000
    assert spoken_by(caplog) == ["Spoken by kokoro voice kokoro-zf_xiaoxiao"]
    assert any("40000005" in r.getMessage() or "many requests" in r.getMessage().lower() for r in caplog.records)


async def test_sambert_token_expired_mid_run_is_renewed_without_falling_back(piper, sambert, nls, caplog):
    engines = {"sambert": sambert, "piper": piper}
    caplog.set_level(logging.INFO)
    async with running_server(engines, "sambert-xiaoyun", chain=chain()) as harness:
        first = await ask(harness, "欢迎回家。", "sambert-xiaoyun")
        nls.expire_tokens()
        second = await ask(harness, "洗衣机已经洗好了。", "sambert-xiaoyun")
    assert first.audio == expected_pcm("欢迎回家。", 16000)
    assert second.audio == expected_pcm("洗衣机已经洗好了。", 16000)
    assert len(nls.token_requests) == 2
    assert spoken_by(caplog) == ["Spoken by sambert voice sambert-xiaoyun"] * 2


async def test_breaker_skips_a_failing_engine_then_tries_it_once(piper, caplog):
    primary = clone(piper, "en")
    primary.fail_with = EngineError("still broken")
    engines = {"indextts": primary, "piper": piper}
    caplog.set_level(logging.INFO)
    # A cool-down no loaded machine outlasts; the test moves the breaker's clock past it.
    settings = chain(breaker_failures=2, breaker_cooldown=300.0)
    texts = ["Timer finished.", "The dishwasher is done.", "Motion detected in the backyard."]
    async with running_server(engines, "clone-en", chain=settings) as harness:
        for text in texts:
            response = await ask(harness, text, "clone-en")
            assert_speech(response.audio, 22050, text)
        assert primary.calls == texts[:2]  # the third sentence skipped the open breaker
        breaker = harness.synthesizer.breakers["indextts"]
        assert breaker.state is BreakerState.OPEN
        # The cool-down ends on the breaker's clock: jump it forward rather than sleep through it.
        breaker._clock = lambda: time.monotonic() + settings.breaker_cooldown
        primary.fail_with = None
        await ask(harness, "Good morning.", "clone-en")
        assert primary.calls[-1] == "Good morning."
        assert harness.synthesizer.breakers["indextts"].state is BreakerState.CLOSED
    changes = [r.getMessage() for r in caplog.records if "breaker" in r.getMessage()]
    assert [c.split("(")[0].strip() for c in changes] == [
        "Engine indextts breaker closed -> open",
        "Engine indextts breaker open -> half-open",
        "Engine indextts breaker half-open -> closed",
    ]


def test_breaker_half_open_lets_exactly_one_trial_through():
    now = [0.0]
    breaker = Breaker("x", failure_threshold=1, cooldown=10, clock=lambda: now[0])
    breaker.record_failure("boom")
    assert not breaker.allow()
    now[0] = 10.0
    assert breaker.allow()
    assert not breaker.allow()  # a second caller during the trial is turned away
    breaker.record_failure("again")
    assert breaker.state is BreakerState.OPEN and not breaker.allow()


async def test_stream_with_a_primary_failing_every_other_sentence_keeps_one_start_and_stop(piper, tmp_path):
    primary = clone(piper, "en")
    engines = {"indextts": primary, "piper": piper}
    sentences = ["Timer finished.", "The dishwasher is done.", "Motion detected in the backyard.", "Good night."]
    original = primary.synthesize

    def flaky(text, voice, *, opening=True):
        if len(primary.calls) % 2:
            primary.calls.append(text)
            raise EngineError("every other one")
        return original(text, voice, opening=opening)

    primary.synthesize = flaky  # type: ignore[method-assign]
    settings = chain(breaker_failures=10)
    async with running_server(engines, "clone-en", cache=make_cache(tmp_path), chain=settings) as harness:
        async with harness.client() as client:
            await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="clone-en")).event())
            for sentence in sentences:
                await client.write_event(SynthesizeChunk(text=sentence + " ").event())
            await client.write_event(SynthesizeStop().event())
            response = await read_until(client, "synthesize-stopped")
    assert response.types == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]
    assert_speech(response.audio, 22050, " ".join(sentences))


async def test_after_a_missed_deadline_the_rest_of_the_response_does_not_wait_again(piper, tmp_path, caplog):
    primary = clone(piper, "en")
    primary.hang.set()
    engines = {"indextts": primary, "piper": piper}
    caplog.set_level(logging.INFO)
    sentences = ["Timer finished.", "The dishwasher is done.", "Motion detected in the backyard."]
    settings = chain(default_deadline=1.0, late_renders=2)
    async with running_server(engines, "clone-en", cache=make_cache(tmp_path), chain=settings) as harness:
        open_ledger(harness.service, tmp_path / "ledger.sqlite3", 100)
        response = await ask(harness, " ".join(sentences), "clone-en")
        # Only the first sentence waited for the clone; it got one deadline miss, not three.
        assert harness.synthesizer.breakers["indextts"].state is BreakerState.CLOSED
        assert spoken_by(caplog) == ["Spoken by piper voice en_US-joe-medium"] * 3
        # The first sentence's render goes on in the background; none is started for the
        # others: every sentence the fallback spoke waits in the render queue instead.
        await harness.service.drain()
        assert primary.calls == sentences[:1]
        queue = harness.synthesizer.queue
        assert sorted(entry.text for entry in queue.entries()) == sorted(sentences)
        # Counted as heard over Wyoming too: three sentences and one reply, by the fallback.
        totals = {(t.voice, t.route, t.engine): (t.sentences, t.replies) for t in harness.synthesizer.heard.totals()}
        assert totals == {("clone-en", "fallback", "piper"): (3, 1)}
        primary.release.set()
    assert response.types == ["audio-start", "audio-chunk", "audio-stop"]
    assert_speech(response.audio, 22050, " ".join(sentences))


async def test_a_reply_switches_voice_at_most_once(piper, tmp_path, caplog):
    """The last sentence is cached in the cloned voice, but the first missed its deadline: the
    whole reply stays with the fallback instead of switching back for one sentence."""
    primary = clone(piper, "en")
    engines = {"indextts": primary, "piper": piper}
    sentences = ["Timer finished.", "The dishwasher is done.", "Motion detected in the backyard."]
    settings = chain(default_deadline=1.0, late_renders=2)
    async with running_server(engines, "clone-en", cache=make_cache(tmp_path), chain=settings) as harness:
        voice = harness.catalogue.find("clone-en")
        assert await harness.synthesizer.render_for_cache(sentences[2], voice) == "rendered"
        primary.hang.set()
        caplog.set_level(logging.DEBUG)
        caplog.clear()
        response = await ask(harness, " ".join(sentences), "clone-en")
        primary.release.set()
    assert spoken_by(caplog) == ["Spoken by piper voice en_US-joe-medium"] * 3
    assert "Cache hit: indextts" not in caplog.text
    assert response.types == ["audio-start", "audio-chunk", "audio-stop"]
    # The cached sentence was not rendered again in the background.
    assert primary.calls.count(sentences[2]) == 1
