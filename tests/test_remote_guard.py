"""A remote that misbehaves: a stand-in on loopback answers `describe` properly, then answers
each sentence with a different kind of broken Wyoming. Each must end the sentence with an
EngineError naming the fault (so the chain moves on), promptly, without reading unbounded data
into memory and without handing soxr a rate it hangs on."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time

import numpy as np
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_indextts.audio import StreamResampler, to_mono16
from wyoming_indextts.engines.base import EngineError
from wyoming_indextts.engines.remote import RemoteEngine, RemoteSettings
from wyoming_indextts.engines.remote_wire import max_audio_seconds

from .conftest import assert_speech, make_cache, read_until, running_server
from .hostile_remote import FORMAT, HANG_UP, START, STOP, StandIn, chunk, info_data, line, tone

TEXT = "Hello there."
FAST = RemoteSettings(connect_timeout=2.0, startup_timeout=5.0, first_audio_timeout=5.0, read_timeout=1.0, refresh=0.5, retry=0.2)


def start_with(**fmt: object) -> bytes:
    return line("audio-start", {**FORMAT, **fmt})


ANSWERS = {
    "not json": (b"this is not an event\n", "not JSON"),
    "endless header": (b"{" + b" " * (2 << 20), "event header over"),
    "enormous payload": (START + json.dumps({"type": "audio-chunk", "payload_length": 10**12}).encode() + b"\n", "payload_length"),
    "negative data length": (json.dumps({"type": "audio-start", "data_length": -5}).encode() + b"\n", "data_length"),
    "fractional payload length": (START + json.dumps({"type": "audio-chunk", "payload_length": 1.5}).encode() + b"\n", "payload_length"),
    "deeply nested json": (b"[" * 60000 + b"\n", "not JSON"),
    "an event without a type": (b'{"data": {}}\n', "without a type"),
    "rate NaN": (b'{"type": "audio-start", "data": {"rate": NaN, "width": 2, "channels": 1}}\n', "not JSON"),
    "rate Infinity": (b'{"type": "audio-start", "data": {"rate": Infinity, "width": 2, "channels": 1}}\n', "not JSON"),
    "rate 1e308": (start_with(rate=1e308), "outside 8000-192000 Hz"),
    "rate 1e999 (inf)": (b'{"type": "audio-start", "data": {"rate": 1e999, "width": 2, "channels": 1}}\n', "whole number of Hz"),
    "rate 2 Hz": (start_with(rate=2), "outside 8000-192000 Hz"),
    "rate 0": (start_with(rate=0), "outside 8000-192000 Hz"),
    "rate negative": (start_with(rate=-22050), "outside 8000-192000 Hz"),
    "rate fractional": (start_with(rate=22050.5), "whole number of Hz"),
    "rate a string": (start_with(rate="22050"), "number of Hz"),
    "rate missing": (line("audio-start", {"width": 2, "channels": 1}), "number of Hz"),
    "width 0": (start_with(width=0), "1-4 are usable"),
    "width 8": (start_with(width=8), "1-4 are usable"),
    "3 channels": (start_with(channels=3), "1 or 2 are usable"),
    "an error event": (line("error", {"text": "voice x is broken"}), "voice x is broken"),
    "cut mid-payload": (START + json.dumps({"type": "audio-chunk", "payload_length": 4000}).encode() + b"\n" + b"\0" * 10, "closed the connection"),
    "chunks, then gone": (START + chunk(b"\0\1" * 500), "closed the connection"),
    "audio before audio-start": (chunk(b"\0\0" * 100), "before its audio-start"),
    "rate changed mid-stream": (START + chunk(b"\0\0" * 100) + chunk(b"\0\0" * 100, {**FORMAT, "rate": 16000}), "changed its audio format"),
    "width changed mid-stream": (START + chunk(b"\0\0" * 100, {**FORMAT, "width": 4}), "changed its audio format"),
    "chunk rate NaN": (START + b'{"type": "audio-chunk", "data": {"rate": NaN, "width": 2, "channels": 1}, "payload_length": 2}\n\0\0', "not JSON"),
    "half a frame": (START + chunk(b"\0\0\0"), "not whole 2-byte frames"),
    "a second audio-start": (START + START, "second audio-start"),
    "endless unknown events": (START + line("ping") * 100, "unexpected events"),
    "more audio than the text can take": (START + chunk(bytes(int(22050 * 2 * (max_audio_seconds(TEXT) + 1)))), "s of audio for 12 characters"),
}


@pytest.fixture(scope="module")
def stand_in():
    server = StandIn()
    yield server
    server.close()


def engine_for(stand_in: StandIn, settings: RemoteSettings = FAST) -> RemoteEngine:
    engine = RemoteEngine(stand_in.uri, settings=settings)
    assert engine.refresh()
    return engine


def speak(engine: RemoteEngine, text: str = TEXT) -> bytes:
    [voice] = engine.voices()
    return b"".join(engine.synthesize(text, voice))


@pytest.mark.parametrize("kind", list(ANSWERS))
def test_a_broken_answer_is_an_engine_error_naming_the_fault(stand_in, kind):
    stand_in.answer, message = ANSWERS[kind]
    engine = engine_for(stand_in)
    [voice] = engine.voices()
    assert voice.extra == {"streaming": "false"}
    started = time.monotonic()
    with pytest.raises(EngineError) as raised:
        speak(engine)
    assert message in str(raised.value)
    assert str(raised.value).startswith(f"remote {stand_in.uri}")
    # The read timeout is 1 s; nothing here waits for it but a dropped connection.
    assert time.monotonic() - started < 30


def test_audio_in_any_usable_format_comes_out_as_22050_hz_16_bit_mono(stand_in):
    """8-bit stereo at 8 kHz, 24-bit at 48 kHz, 32-bit stereo at 192 kHz: each converted, and the
    tone's length and loudness survive."""
    engine = engine_for(stand_in)
    pcm16 = np.frombuffer(tone(1.0, 8000), dtype="<i2").astype(np.int32)
    as_8bit_stereo = np.repeat((pcm16 >> 8) + 128, 2).astype(np.uint8).tobytes()
    pcm16 = np.frombuffer(tone(1.0, 48000), dtype="<i2").astype(np.int32)
    as_24bit = b"".join(int(v << 8).to_bytes(3, "little", signed=True) for v in pcm16)
    pcm16 = np.frombuffer(tone(1.0, 192000), dtype="<i2").astype(np.int32)
    as_32bit_stereo = np.repeat(pcm16 << 16, 2).astype("<i4").tobytes()
    for audio, fmt in [
        (as_8bit_stereo, {"rate": 8000, "width": 1, "channels": 2}),
        (as_24bit, {"rate": 48000, "width": 3, "channels": 1}),
        (as_32bit_stereo, {"rate": 192000, "width": 4, "channels": 2}),
    ]:
        frames = fmt["width"] * fmt["channels"] * 1000
        pieces = [chunk(audio[i : i + frames], fmt) for i in range(0, len(audio), frames)]
        stand_in.answer = line("audio-start", fmt) + b"".join(pieces) + STOP
        out = np.frombuffer(speak(engine), dtype="<i2")
        assert abs(len(out) - 22050) < 500, (fmt, len(out))
        loudness = np.sqrt(np.mean(out.astype(np.float64) ** 2))
        assert 8000 / math.sqrt(2) * 0.9 < loudness < 8000 / math.sqrt(2) * 1.1, (fmt, loudness)


def test_to_mono16_reads_each_width_as_a_wav_file_would():
    assert to_mono16(bytes([128, 255, 0]), 1, 1) == np.array([0, 127 << 8, -32768], dtype="<i2").tobytes()
    assert to_mono16((0x123456).to_bytes(3, "little") + (-2).to_bytes(3, "little", signed=True), 3, 1) == np.array([0x1234, -1], dtype="<i2").tobytes()
    assert to_mono16(np.array([0x12345678, -(1 << 31)], dtype="<i4").tobytes(), 4, 1) == np.array([0x1234, -32768], dtype="<i2").tobytes()
    assert to_mono16(np.array([1000, 3000, -10, -30], dtype="<i2").tobytes(), 2, 2) == np.array([2000, -20], dtype="<i2").tobytes()


@pytest.mark.parametrize("rate", [math.nan, math.inf, -math.inf, 1e308, 0, 2, 7999, 192001, -22050, 22050.5, "22050", None, True])
def test_the_resampler_refuses_rates_soxr_cannot_take(rate):
    """soxr.ResampleStream(nan) never returns and holds the GIL: no path may hand it one."""
    with pytest.raises(ValueError, match="sample rate"):
        StreamResampler(rate, 22050)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sample rate"):
        StreamResampler(22050, rate)  # type: ignore[arg-type]


def test_no_audio_past_the_texts_bound_is_passed_on(stand_in):
    """The 2 Hz case: the bound stops a remote's endless audio before it reaches the cache."""
    most = max_audio_seconds(TEXT)
    piece = bytes(22050 * 2)  # one second a chunk
    stand_in.answer = START + chunk(piece) * (int(most) + 5) + STOP
    engine = engine_for(stand_in)
    [voice] = engine.voices()
    passed = 0
    with pytest.raises(EngineError, match="s of audio for 12 characters"):
        for pcm in engine.synthesize(TEXT, voice):
            passed += len(pcm)
    assert passed <= most * 22050 * 2


def test_a_remote_that_stalls_between_chunks_fails_within_the_read_timeout(stand_in):
    stand_in.answer = [START + chunk(tone(0.2)), 60.0]
    engine = engine_for(stand_in)
    started = time.monotonic()
    with pytest.raises(EngineError, match="no whole event within 1 s"):
        speak(engine)
    assert time.monotonic() - started < 30  # not the 60 s stall
    assert not engine.reachable  # a stall is a fault of the connection: describe tells when it is back


def test_a_remote_that_trickles_an_event_cannot_hold_a_thread(stand_in):
    """A byte at a time, each well inside the read timeout: the event must still be whole in time."""
    event = START + chunk(tone(0.1))
    stand_in.answer = [step for byte in event for step in (bytes([byte]), 0.2)]
    engine = engine_for(stand_in)
    started = time.monotonic()
    with pytest.raises(EngineError, match="no whole event within"):
        speak(engine)
    assert time.monotonic() - started < 30


def test_a_reset_mid_answer_is_an_engine_error(stand_in):
    stand_in.answer = [START + chunk(tone(0.2)), HANG_UP]
    with pytest.raises(EngineError, match="failed mid-sentence"):
        speak(engine_for(stand_in))


def test_closing_the_engine_frees_a_worker_blocked_on_a_silent_remote(stand_in):
    stand_in.answer = [120.0]
    engine = engine_for(stand_in, RemoteSettings(first_audio_timeout=120.0, read_timeout=120.0))
    failures: list[str] = []

    def render() -> None:
        try:
            speak(engine)
        except EngineError as err:
            failures.append(str(err))

    worker = threading.Thread(target=render)
    worker.start()
    time.sleep(0.5)
    assert worker.is_alive()
    engine.close()
    worker.join(20)
    assert not worker.is_alive(), "the worker is still blocked on the remote"
    assert failures and "stopping" in failures[0]


def test_a_remote_found_away_fails_its_sentences_at_once(stand_in):
    engine = engine_for(stand_in)
    [voice] = engine.voices()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    engine._address = ("127.0.0.1", port)  # the same remote, gone
    assert not engine.refresh() and not engine.reachable
    assert engine.voices() == [voice]  # its voices stay, so requests for them reach the chain
    with pytest.raises(EngineError, match="unreachable"):
        next(iter(engine.synthesize(TEXT, voice)))


def test_start_up_waits_a_few_seconds_for_a_silent_remote_and_learns_its_voices_later():
    """Accepts connections, answers nothing: start-up goes on after `startup_timeout`, not the
    read timeout, and the voices appear once the remote answers."""
    silent = StandIn(voice="late-voice")
    silent.mute = True
    settings = RemoteSettings(startup_timeout=1.0, read_timeout=30.0, first_audio_timeout=30.0, refresh=0.5, retry=0.2)
    engine = RemoteEngine(silent.uri, settings=settings)
    try:
        started = time.monotonic()
        assert not engine.start()
        assert time.monotonic() - started < 10  # the read timeout would be 30 s
        assert engine.voices() == []
        silent.mute = False
        give_up = time.monotonic() + 60
        while not engine.voices():
            assert time.monotonic() < give_up, "the voices were never learned"
            time.sleep(0.1)
        assert [v.name for v in engine.voices()] == ["late-voice"] and engine.reachable
    finally:
        engine.close()
        silent.close()


def test_retries_back_off_while_the_remote_is_away():
    engine = RemoteEngine("tcp://127.0.0.1:9", settings=RemoteSettings(retry=5.0, refresh=30.0))
    waits = []
    for _ in range(6):
        engine._mark_down(ConnectionRefusedError("refused"))
        waits.append(engine._next_refresh())
    assert waits == [5.0, 10.0, 20.0, 30.0, 30.0, 30.0]


def bad_info(voices: list[object]) -> bytes:
    data = info_data("good")
    data["tts"][0]["voices"] += voices
    return line("info", data)


def voice_entry(name: object = "v", languages: object = ("en",), **extra: object) -> dict:
    return {"name": name, "attribution": {"name": "", "url": ""}, "installed": True, "description": "",
            "version": None, "languages": list(languages) if isinstance(languages, tuple) else languages, **extra}


class InfoStandIn(StandIn):
    """Describe answered with `info` bytes chosen by the test."""

    info = b""

    def _answer(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            reader.readline()
            conn.sendall(self.info)


def test_unusable_voices_in_info_are_left_out_and_the_rest_kept(caplog):
    caplog.set_level(logging.WARNING)
    server = InfoStandIn()
    server.info = bad_info([
        voice_entry("n" * 1000),
        voice_entry("line\nbreak"),
        voice_entry(""),
        voice_entry(5),
        voice_entry("no-list", languages="en"),
        voice_entry("too-many-languages", languages=[f"l{i}" for i in range(100)]),
        voice_entry("bad-language", languages=[None]),
        voice_entry("good"),  # a second voice of the same name: the first is kept
        "not a voice",
        voice_entry("long-description", description="d" * 100_000, version="v" * 1000),
        voice_entry("not-installed", installed=False),
    ])
    engine = RemoteEngine(server.uri, settings=FAST)
    try:
        assert engine.refresh()
        voices = {v.name: v for v in engine.voices()}
        assert list(voices) == ["good", "long-description"]
        assert len(voices["long-description"].description) == 1000 and len(voices["long-description"].version) == 128
        assert "left out" in caplog.text and "n" * 1000 not in caplog.text
    finally:
        server.close()


@pytest.mark.parametrize(
    ("info", "why"),
    [
        (line("info", {"tts": "x"}), "no TTS programs"),
        (line("info", {"tts": None}), "no TTS programs"),
        (line("info", {}), "no TTS programs"),
        (b"garbage\n", "not JSON"),
        (line("ping") * 100, "unexpected events"),
        (b"", "closed the connection"),
    ],
)
def test_a_malformed_info_leaves_the_remote_away_with_a_reason(info, why):
    server = InfoStandIn()
    server.info = info
    engine = RemoteEngine(server.uri, settings=FAST)
    try:
        assert not engine.refresh() and not engine.reachable and engine.voices() == []
        assert why in engine._last_error
    finally:
        server.close()


def test_programs_and_voices_of_the_wrong_shape_give_no_voices():
    server = InfoStandIn()
    server.info = line("info", {"tts": [{"installed": True, "voices": "x"}, 5, None, {"installed": True}]})
    engine = RemoteEngine(server.uri, settings=FAST)
    try:
        assert engine.refresh() and engine.voices() == []
    finally:
        server.close()


@pytest.mark.parametrize(
    ("answer", "fault"),
    [
        (start_with(rate=2) + chunk(b"\1\0" * 500) + STOP, "a sample rate of 2 Hz"),
        (start_with(rate=1e308) + chunk(b"\1\0" * 500) + STOP, "a sample rate of 1e+308 Hz"),
        (b'{"type": "audio-start", "data": {"rate": NaN, "width": 2, "channels": 1}}\n', "not JSON"),
    ],
    ids=["2 Hz", "1e308 Hz", "NaN Hz"],
)
async def test_the_front_speaks_what_the_remote_broke_in_the_bundled_voice(piper, tmp_path, caplog, answer, fault):
    """Through the real server and the real `wyoming` client: the remote's fault is logged and
    the bundled voice speaks the sentence. (A fault after some audio, such as a format change
    mid-stream, is the synthesizer's case of a step failing mid-sentence.)"""
    caplog.set_level(logging.INFO)
    text = "The washing machine has finished its cycle."
    stand_in = StandIn(voice="en_US-joe-medium", answer=answer)
    remote = RemoteEngine(stand_in.uri, settings=FAST)
    try:
        assert remote.start()
        cache = make_cache(tmp_path)
        async with running_server({"remote": remote, "piper": piper}, cache=cache) as front:
            async with AsyncTcpClient("127.0.0.1", front.port) as client:
                await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="en_US-joe-medium")).event())
                response = await read_until(client, "audio-stop")
    finally:
        remote.close()
        stand_in.close()
    assert_speech(response.audio, 22050, text)
    assert len(response.audio) < 10 * 22050 * 2  # the bundled voice's few seconds, not 250 s of a 2 Hz stream
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("remote failed")]
    assert len(failures) == 1 and fault in failures[0], failures
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.getMessage().startswith("Spoken by")] == ["Spoken by piper voice en_US-joe-medium"]
