"""A voice name a client sends reaches the log cut short (issue 21, item 9): a 100 KB unknown
name was logged whole, one 100 KB line per request."""

from __future__ import annotations

import logging

from wyoming.tts import Synthesize, SynthesizeVoice

from .conftest import assert_speech, read_until, running_server

TEXT = "The porch light is on."


async def test_an_unknown_voice_name_is_logged_cut_short_with_its_length(piper, caplog):
    caplog.set_level(logging.WARNING, logger="wyoming_indextts.voices")
    name = "grandma" + "x" * 100_000
    async with running_server({"piper": piper}) as harness:
        async with harness.client() as client:
            await client.write_event(Synthesize(text=TEXT, voice=SynthesizeVoice(name=name)).event())
            response = await read_until(client, "audio-stop")
    assert_speech(response.audio, response.rate, TEXT)  # spoken in the default voice
    [line] = [record.getMessage() for record in caplog.records if "Unknown voice" in record.getMessage()]
    assert len(line) < 300, f"a {len(line)}-character log line"
    assert "'grandmaxxx" in line and f"({len(name)} characters)" in line


async def test_a_short_unknown_voice_name_is_logged_whole(piper, caplog):
    caplog.set_level(logging.WARNING, logger="wyoming_indextts.voices")
    async with running_server({"piper": piper}) as harness:
        async with harness.client() as client:
            await client.write_event(Synthesize(text=TEXT, voice=SynthesizeVoice(name="grandpa")).event())
            await read_until(client, "audio-stop")
    assert "Unknown voice 'grandpa' requested" in caplog.text
