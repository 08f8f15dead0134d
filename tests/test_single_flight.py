"""Identical sentences in flight are rendered once, and no sentence of a reply is dropped for
want of a render slot (issue 21, item 8): real Wyoming clients over sockets, the real bundled
voice behind engines that count their renders."""

from __future__ import annotations

import asyncio

from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_indextts.synthesizer import ChainSettings

from .conftest import CountingEngine, assert_speech, read_until, running_server

SENTENCES = ["The doorbell rang.", "Someone is waiting at the front door."]
CLIENTS = 40


async def ask(harness, text: str, voice: str | None = None):
    async with harness.client() as client:
        chosen = SynthesizeVoice(name=voice) if voice else None
        await client.write_event(Synthesize(text=text, voice=chosen).event())
        return await read_until(client, "audio-stop", timeout=240)


def listeners(harness) -> int:
    return sum(flight.listeners for flight in harness.synthesizer._flights.values())


async def test_forty_requests_for_one_text_render_each_sentence_once(piper):
    """No cache, so only the merging of renders in flight can spare the engine: the render is
    held until all forty have joined it, then each of them hears the whole text."""
    engine = CountingEngine(piper)
    engine.hang.set()
    try:
        async with running_server({"piper": engine}, cache=None, max_concurrent=2) as harness:
            replies = [asyncio.create_task(ask(harness, " ".join(SENTENCES))) for _ in range(CLIENTS)]
            async with asyncio.timeout(120):
                while listeners(harness) < CLIENTS:
                    await asyncio.sleep(0.05)
            engine.release.set()
            responses = await asyncio.gather(*replies)
    finally:
        engine.release.set()
    assert engine.calls == SENTENCES
    for response in responses:
        assert response.errors == []
        assert response.audio == responses[0].audio  # every listener heard the whole render
    assert_speech(responses[0].audio, responses[0].rate, " ".join(SENTENCES))


async def test_a_listener_leaving_does_not_stop_the_render_for_the_others(piper):
    engine = CountingEngine(piper)
    engine.hang.set()
    try:
        async with running_server({"piper": engine}, cache=None) as harness:
            staying = asyncio.create_task(ask(harness, SENTENCES[1]))
            async with harness.client() as leaving:
                await leaving.write_event(Synthesize(text=SENTENCES[1]).event())
                async with asyncio.timeout(60):
                    while listeners(harness) < 2:
                        await asyncio.sleep(0.05)
            # The leaving client is gone; the one left still gets the whole sentence.
            async with asyncio.timeout(60):
                while listeners(harness) > 1:
                    await asyncio.sleep(0.05)
            engine.release.set()
            response = await staying
    finally:
        engine.release.set()
    assert engine.calls == [SENTENCES[1]]
    assert response.errors == []
    assert_speech(response.audio, response.rate, SENTENCES[1])


async def test_with_every_slot_busy_each_sentence_fails_over_or_waits_but_is_never_dropped(piper):
    """One render slot, a slow cloned voice and a slow bundled voice, ten replies of three
    different sentences at once: the clone cannot get the slot within its deadline and hands
    each sentence on; the bundled voice, last in the chain, queues for the slot (or the spare)
    longer than the sentence cap, and still speaks every sentence of every reply."""
    clone = CountingEngine(piper, name="indextts", voice_name="clone", languages=("en",), delay=1.5)
    bundled = CountingEngine(piper, delay=1.5)
    chain = ChainSettings(default_deadline=1.0, sentence_cap=5.0)
    texts = [
        f"Reply {n} begins here. Its middle sentence is number {n}. And reply {n} ends here." for n in range(10)
    ]
    alone = [b"".join(piper.synthesize(text, bundled.inner_voice)) for text in texts]
    async with running_server({"indextts": clone, "piper": bundled}, "clone", cache=None, max_concurrent=1, chain=chain) as harness:
        responses = await asyncio.gather(*(ask(harness, text, "clone") for text in texts))
    for text, response, whole in zip(texts, responses, alone):
        assert response.errors == [], response.errors
        assert len(response.audio) >= 0.8 * len(whole), f"{text!r}: a sentence is missing"
        assert_speech(response.audio, response.rate, text)
