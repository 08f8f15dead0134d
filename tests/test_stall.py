"""An engine that stalls between chunks hands the sentence on like one that misses its first
audio (issue 21, item 2), over a real Wyoming client and the real bundled voice: the listener
never hears a silence much longer than the step's deadline, and the sentence is heard whole."""

from __future__ import annotations

import logging
import time

from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_indextts.synthesizer import ChainSettings

from .conftest import (
    CountingEngine,
    Response,
    assert_speech,
    make_cache,
    running_server,
)

DEADLINE = 1.5
SLACK = 4.0
"""The target is deadline + 1 s of silence; this loaded 2-core machine gets 3 s more. A stalled
engine without the fix leaves STALL seconds, far beyond either."""
STALL = 30.0
SENTENCES = ("The washing machine has finished its programme.", "Please empty it soon.")
TEXT = " ".join(SENTENCES)


class StallingEngine(CountingEngine):
    """Yields the first `head` of its real audio at once, stalls for `stall` seconds (or until
    released), then yields the rest: a remote whose network went quiet mid-sentence. The audio
    is rendered ahead (`prepare`), so the first chunk is never late on a busy machine."""

    def __init__(self, *args, head: float, stall: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = head
        self.stall = stall
        self.audio: dict[str, bytes] = {}

    def prepare(self, *texts: str) -> None:
        for text in texts:
            self.audio[text] = b"".join(self.inner.synthesize(text, self.inner_voice))

    def synthesize(self, text, voice, *, opening=True):
        self.calls.append(text)
        pcm = self.audio[text]
        split = int(len(pcm) * self.head) // 2 * 2
        yield pcm[:split]
        self.release.wait(self.stall)
        yield pcm[split:]


async def timed_reply(harness, text: str, voice: str) -> tuple[Response, float]:
    """The reply, and the longest wait for audio in it (from the request to the first chunk,
    then between chunks), as the client saw it."""
    response = Response()
    async with harness.client() as client:
        last = time.monotonic()
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())
        longest = 0.0
        while True:
            event = await client.read_event()
            assert event is not None
            response.events.append(event)
            if event.type == "audio-chunk":
                now = time.monotonic()
                longest = max(longest, now - last)
                last = now
            if event.type == "audio-stop":
                return response, longest


async def test_an_engine_stalling_after_its_first_chunk_hands_over_within_the_deadline(piper, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    stalling = StallingEngine(piper, name="indextts", voice_name="clone", languages=("en",), head=0.1, stall=STALL)
    stalling.prepare(*SENTENCES)
    chain = ChainSettings(default_deadline=DEADLINE, sentence_cap=60.0)
    try:
        async with running_server({"indextts": stalling, "piper": piper}, "clone", cache=make_cache(tmp_path), chain=chain) as harness:
            response, longest = await timed_reply(harness, TEXT, "clone")
    finally:
        stalling.release.set()
    assert response.errors == []
    assert longest < DEADLINE + 1.0 + SLACK, f"{longest:.1f} s without audio"
    # What was cut is said again whole by the fallback (the duration check below counts it).
    assert "indextts failed after" in caplog.text and "the next engine speaks the whole sentence" in caplog.text
    assert_speech(response.audio, response.rate, TEXT)


async def test_an_engine_ahead_of_the_listener_may_pause_while_its_audio_plays(piper, tmp_path, caplog):
    """Two thirds of a long sentence arrive at once (several seconds of audio), then the engine
    pauses for longer than the deadline but less than the audio still playing: the listener
    hears no gap, so the sentence stays with its voice."""
    caplog.set_level(logging.INFO)
    text = "This sentence is long enough that two thirds of it play for several seconds on the speaker."
    pausing = StallingEngine(piper, name="indextts", voice_name="clone", languages=("en",), head=0.67, stall=2.0)
    pausing.prepare(text)
    chain = ChainSettings(default_deadline=0.5, sentence_cap=60.0)
    async with running_server({"indextts": pausing, "piper": piper}, "clone", cache=make_cache(tmp_path), chain=chain) as harness:
        response, _ = await timed_reply(harness, text, "clone")
    assert response.errors == []
    assert "failed" not in caplog.text
    assert "Spoken by indextts voice clone" in caplog.text
    assert_speech(response.audio, response.rate, text)
