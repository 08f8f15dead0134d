"""The Wyoming protocol as Home Assistant uses it, over real TCP with the real bundled voice."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from wyoming_indextts.handler import HandlerSettings
from wyoming_indextts.sentences import SplitterSettings

from .conftest import SHARED, CountingEngine, assert_speech, read_until, running_server

ANNOUNCEMENTS = (SHARED / "texts" / "announcements_en.txt").read_text(encoding="utf-8").splitlines()
REPLIES = (SHARED / "texts" / "replies_en.txt").read_text(encoding="utf-8").splitlines()


async def test_describe_advertises_one_streaming_program_with_its_voice(piper):
    async with running_server({"piper": piper}) as harness, harness.client() as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await read_event_of(client, "info"))
    assert len(info.tts) == 1
    program = info.tts[0]
    assert program.name == "indextts"
    assert program.installed and program.version and program.description
    assert program.attribution.name
    assert program.supports_synthesize_streaming is True
    voice = program.voices[0]
    assert voice.name == "en_US-joe-medium"
    assert voice.languages == ["en_US"]
    assert voice.installed and voice.description and voice.attribution.url


@pytest.mark.parametrize("text", [ANNOUNCEMENTS[0], ANNOUNCEMENTS[3], REPLIES[0]])
async def test_synthesize_answers_one_start_chunks_one_stop_with_speech(piper, text):
    async with running_server({"piper": piper}) as harness, harness.client() as client:
        await client.write_event(Synthesize(text=text).event())
        response = await read_until(client, "audio-stop")
    assert response.types == ["audio-start", "audio-chunk", "audio-stop"]
    assert response.rate == 22050
    assert_speech(response.audio, 22050, text)
    # Home Assistant writes its WAV header from audio-start: every chunk must match it.
    for event in response.events:
        if event.type == "audio-chunk":
            assert (event.data["rate"], event.data["width"], event.data["channels"]) == (22050, 2, 1)


async def test_voice_by_name_default_and_unknown_with_warning(piper, caplog):
    engines = {"piper": piper}
    async with running_server(engines) as harness, harness.client() as client:
        for voice in (SynthesizeVoice(name="en_US-joe-medium"), None, SynthesizeVoice(name="no-such-voice")):
            with caplog.at_level(logging.WARNING):
                await client.write_event(Synthesize(text="Timer finished.", voice=voice).event())
                response = await read_until(client, "audio-stop")
            assert response.types == ["audio-start", "audio-chunk", "audio-stop"]
            assert_speech(response.audio, response.rate, "Timer finished.")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no-such-voice" in message and "en_US-joe-medium" in message for message in warnings)


async def test_stream_with_text_broken_mid_word_speaks_each_sentence_as_it_completes(piper):
    text = REPLIES[0]  # three sentences
    async with running_server({"piper": piper}) as harness, harness.client() as client:
        await client.write_event(SynthesizeStart().event())
        # "Sure. I've tur" completes the first sentence only once "I" is seen.
        for piece in ("Su", "re. I've tur"):
            await client.write_event(SynthesizeChunk(text=piece).event())
        # Audio for "Sure." must arrive before the rest of the text is even sent.
        early = await read_until(client, "audio-chunk", timeout=20)
        assert early.types == ["audio-start", "audio-chunk"]
        rest = text[len("Sure. I've tur") :]
        for start in range(0, len(rest), 7):
            await client.write_event(SynthesizeChunk(text=rest[start : start + 7]).event())
        await client.write_event(Synthesize(text=text).event())  # compatibility copy: ignored
        await client.write_event(SynthesizeStop().event())
        late = await read_until(client, "synthesize-stopped")
    assert late.types == ["audio-chunk", "audio-stop", "synthesize-stopped"]
    assert_speech(early.audio + late.audio, 22050, text)


async def test_stream_and_single_request_speak_the_same_sentences(piper):
    """The compatibility `synthesize` inside a stream is ignored: the audio is spoken once."""
    text = ANNOUNCEMENTS[3]
    async with running_server({"piper": piper}) as harness, harness.client() as client:
        await client.write_event(Synthesize(text=text).event())
        single = await read_until(client, "audio-stop")
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text=text).event())
        await client.write_event(Synthesize(text=text).event())
        await client.write_event(SynthesizeStop().event())
        streamed = await read_until(client, "synthesize-stopped")
    assert streamed.types == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]
    # Piper's noise makes each render differ slightly; doubled audio would be twice as long.
    assert abs(len(streamed.audio) - len(single.audio)) < 0.25 * len(single.audio)


async def test_long_first_sentence_sends_its_first_clause_first(piper):
    first_clause = "The garage door has been open for ten minutes, "
    async with running_server({"piper": piper}) as harness, harness.client() as client:
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text=first_clause + "and").event())
        early = await read_until(client, "audio-chunk", timeout=20)
        await client.write_event(SynthesizeChunk(text=" the porch light is still on.").event())
        await client.write_event(SynthesizeStop().event())
        late = await read_until(client, "synthesize-stopped")
    assert early.types == ["audio-start", "audio-chunk"]
    assert late.types[-2:] == ["audio-stop", "synthesize-stopped"]


async def test_first_clause_can_be_turned_off(piper):
    settings = HandlerSettings(splitter=SplitterSettings(first_clause_weight=0))
    async with running_server({"piper": piper}, settings=settings) as harness, harness.client() as client:
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text="The garage door has been open for ten minutes, and").event())
        with pytest.raises(TimeoutError):
            await read_until(client, "audio-chunk", timeout=2)
        await client.write_event(SynthesizeStop().event())
        response = await read_until(client, "synthesize-stopped")
    assert response.types == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]


async def test_describe_is_answered_while_every_worker_is_busy(piper):
    slow = CountingEngine(piper, delay=1.5)  # outlasts the 1 s allowed for describe
    async with running_server({"piper": slow}, max_concurrent=1) as harness:
        async with harness.client() as busy, harness.client() as asking:
            await busy.write_event(Synthesize(text="Motion detected in the backyard.").event())
            while not slow.calls:  # the render has started and holds the only worker
                await asyncio.sleep(0.01)
            await asking.write_event(Describe().event())
            info = await read_event_of(asking, "info", timeout=1.0)
            assert info.type == "info"
            # The slow render is still going: describe did not wait for it.
            response = await read_until(busy, "audio-stop")
            assert response.types == ["audio-start", "audio-chunk", "audio-stop"]


async def test_requests_beyond_max_concurrent_wait_their_turn(piper):
    slow = CountingEngine(piper, delay=0.5)
    async with running_server({"piper": slow}, max_concurrent=1) as harness:
        clients = [harness.client() for _ in range(3)]
        for client in clients:
            await client.connect()
        texts = ["Timer finished.", "The dishwasher is done.", "Motion detected in the backyard."]
        for client, text in zip(clients, texts):
            await client.write_event(Synthesize(text=text).event())
        responses = await asyncio.gather(*(read_until(c, "audio-stop") for c in clients))
        for client in clients:
            await client.disconnect()
    for response, text in zip(responses, texts):
        assert_speech(response.audio, 22050, text)
    assert sorted(slow.calls) == sorted(texts)


async def read_event_of(client, event_type: str, timeout: float = 10.0):
    async with asyncio.timeout(timeout):
        while True:
            event = await client.read_event()
            assert event is not None
            if event.type == event_type:
                return event


async def send_raw(client, data: bytes) -> None:
    client._writer.write(data)
    await client._writer.drain()


async def assert_still_serving(client) -> None:
    await client.write_event(Describe().event())
    assert (await read_event_of(client, "info")).type == "info"


async def test_malformed_json_header_gets_an_error_and_keeps_the_connection(piper):
    async with running_server({"piper": piper}) as harness, harness.client() as client:
        await send_raw(client, b'{"type": "synthesize", "data": {"text": \n')
        error = await read_event_of(client, "error")
        assert "malformed" in error.data["text"]
        await send_raw(client, b"[1, 2, 3]\n")
        assert "malformed" in (await read_event_of(client, "error")).data["text"]
        await assert_still_serving(client)


async def test_huge_payload_is_discarded_with_an_error(piper):
    async with running_server({"piper": piper}) as harness, harness.client() as client:
        size = 5 << 20
        header = json.dumps({"type": "synthesize", "payload_length": size}).encode() + b"\n"
        await send_raw(client, header + b"\0" * size)
        error = await read_event_of(client, "error")
        assert "larger than" in error.data["text"]
        await assert_still_serving(client)
        # An oversized header line is dropped too.
        await send_raw(client, b'{"type": "' + b"x" * (200 << 10) + b'"}\n')
        assert "too long" in (await read_event_of(client, "error")).data["text"]
        await assert_still_serving(client)


async def test_unknown_and_out_of_order_events_do_not_disconnect(piper):
    async with running_server({"piper": piper}) as harness, harness.client() as client:
        await send_raw(client, b'{"type": "run-satellite"}\n')
        await assert_still_serving(client)
        await client.write_event(SynthesizeChunk(text="Hello").event())
        assert "synthesize-start" in (await read_event_of(client, "error")).data["text"]
        await client.write_event(SynthesizeStop().event())
        assert "without synthesize-start" in (await read_event_of(client, "error")).data["text"]
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeStart().event())
        assert "stream is open" in (await read_event_of(client, "error")).data["text"]
        await client.write_event(SynthesizeChunk(text="Timer finished.").event())
        await client.write_event(SynthesizeStop().event())
        response = await read_until(client, "synthesize-stopped")
        assert response.types == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]


@pytest.mark.parametrize("text", ["", "   \n\t ", "🎉🎉🎉", "?!…"])
async def test_text_with_nothing_to_say_gets_a_clear_error(piper, text):
    async with running_server({"piper": piper}) as harness, harness.client() as client:
        await client.write_event(Synthesize(text=text).event())
        response = await read_until(client, "audio-stop")
        assert response.types == ["error", "audio-start", "audio-stop"]
        assert "Nothing to say" in response.errors[0]
        await assert_still_serving(client)


async def test_emoji_inside_text_is_skipped_and_the_words_spoken(piper):
    text = "The dishwasher is done 🎉. Time for dessert 🍰!"
    async with running_server({"piper": piper}) as harness, harness.client() as client:
        await client.write_event(Synthesize(text=text).event())
        response = await read_until(client, "audio-stop")
    assert response.types == ["audio-start", "audio-chunk", "audio-stop"]
    assert_speech(response.audio, 22050, "The dishwasher is done. Time for dessert!")


async def test_ten_thousand_characters_are_split_and_spoken_in_one_response(piper):
    sentences = (REPLIES * 30)
    text = " ".join(sentences)[:10_000]
    text += " " + "word " * ((10_000 - len(text)) // 5)
    text = text[:10_000]
    engine = CountingEngine(piper)
    async with running_server({"piper": engine}) as harness, harness.client() as client:
        await client.write_event(Synthesize(text=text).event())
        response = await read_until(client, "audio-stop", timeout=300)
    assert response.types == ["audio-start", "audio-chunk", "audio-stop"]
    assert len(engine.calls) > 50
    assert max(len(unit) for unit in engine.calls) <= 300
    seconds = len(response.audio) / 2 / 22050
    assert len(text) / 30 <= seconds <= len(text) / 8


async def test_a_broken_client_does_not_affect_another(piper):
    async with running_server({"piper": piper}) as harness:
        async with harness.client() as rude, harness.client() as polite:
            await rude.write_event(Synthesize(text="A long sentence that the client will not wait for.").event())
            await rude.disconnect()
            await polite.write_event(Synthesize(text="Timer finished.").event())
            response = await read_until(polite, "audio-stop")
            assert_speech(response.audio, 22050, "Timer finished.")
