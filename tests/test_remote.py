"""A remote renderer: this server in front, another server process of it behind (the bundled
voice, spoken slower so its audio is told apart), over real loopback sockets with the real
`wyoming` client. The front's own copy of the voice hangs, so any audio the front delivers
quickly came from the back, its cache, or the bundled voice after the back went away."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_indextts.engines.remote import RemoteEngine, RemoteSettings, parse_remote_uri
from wyoming_indextts.engines.remote_wire import max_audio_seconds
from wyoming_indextts.synthesizer import ChainSettings

from .conftest import CountingEngine, assert_speech, make_cache, read_until, running_server
from .test_cli import SERVER, free_port, run_cli, server_process, wait_for_port

VOICE = "en_US-joe-medium"
FIRST = "The washing machine has finished its cycle."
STORY = (
    "The front door has been open for ten minutes, so please close it before the heating runs all night. "
    "The back garden lights will switch off at eleven, and the sprinkler starts at six in the morning. "
    "Remember that the recycling goes out on Tuesday evening, together with the garden waste bin. "
    "The upstairs bathroom window is still open, and rain is expected later tonight across the region."
)
# A generous start-up wait: a loaded test machine may take seconds to answer describe.
SETTINGS = RemoteSettings(connect_timeout=1.0, startup_timeout=10.0, read_timeout=10.0, refresh=1.0, retry=0.3)


class Back:
    """This server as a separate process, speaking 1.4x slower than the front's bundled voice."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.data_dir = tmp_path / "back"
        self.log = tmp_path / "back.log"
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [*SERVER, "--uri", self.uri, "--data-dir", str(self.data_dir), "--length-scale", "1.4", "--threads", "1"],
                stderr=log,
            )
        await wait_for_port(self.port, self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def spoken(self) -> int:
        return self.log.read_text().count("Spoken by piper")


@pytest.fixture
async def back(tmp_path):
    server = Back(tmp_path)
    await server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.send_signal(signal.SIGCONT)
        server.kill()


@pytest.fixture
def remote(back):
    engine = RemoteEngine(back.uri, settings=SETTINGS)
    assert engine.start(), "the back did not answer describe"
    yield engine
    engine.close()


def front_engines(piper, remote) -> dict:
    own = CountingEngine(piper, name="indextts")  # the front's own copy of the voice: hung
    own.hang.set()
    return {"remote": remote, "indextts": own, "piper": piper}


def front_chain() -> ChainSettings:
    return ChainSettings(default_deadline=20.0, deadlines={"indextts": 1.0}, sentence_cap=30.0, breaker_cooldown=1.0)


async def ask(port: int, text: str, voice: str = VOICE, done: str = "audio-stop"):
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())
        return await read_until(client, done)


async def describe(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        event = await client.read_event()
        while event is not None and not Info.is_type(event.type):
            event = await client.read_event()
        assert event is not None
        return Info.from_event(event)


def spoken_by(caplog) -> list[str]:
    return [r.getMessage().split(":")[0] for r in caplog.records if r.getMessage().startswith("Spoken by")]


async def wait_until(condition, timeout: float = 20.0) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, "gave up waiting"
        await asyncio.sleep(0.1)


async def test_front_speaks_through_the_back_caches_it_and_falls_back_when_it_dies(piper, back, remote, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    engines = front_engines(piper, remote)
    cache = make_cache(tmp_path / "front")
    async with running_server(engines, VOICE, cache=cache, chain=front_chain()) as front:
        assert [v.engine for v in front.catalogue.voices() if v.name == VOICE] == ["remote"]  # the remote's copy first
        response = await ask(front.port, FIRST)
        assert spoken_by(caplog) == [f"Spoken by remote voice {VOICE}"]
        assert back.spoken() == 1
        assert engines["indextts"].calls == []
        # Byte for byte what the back says itself (its own cache answers the same bytes).
        direct = await ask(back.port, FIRST)
        assert response.audio == direct.audio and response.rate == 22050
        assert_speech(response.audio, 22050, FIRST)
        local = b"".join(piper.synthesize(FIRST, piper.voices()[0]))
        # A remote that does not stream is asked with a plain `synthesize`: the same audio.
        plain = replace(remote.voices()[0], extra={"streaming": "false"})
        assert await asyncio.to_thread(lambda: b"".join(remote.synthesize(FIRST, plain))) == response.audio
        assert back.spoken() == 1
        assert len(response.audio) > 1.2 * len(local), "not the back's slower voice"
        # Even this slowed voice is far inside what a remote may send for the text.
        assert len(response.audio) / (22050 * 2) < 0.1 * len(FIRST) < max_audio_seconds(FIRST) / 5

        # Cached here: the back is not asked again, and answers survive its death.
        back.kill()
        again = await ask(front.port, FIRST)
        assert again.audio == response.audio
        assert spoken_by(caplog) == [f"Spoken by remote voice {VOICE}"]

        # Killed mid-response: the rest is spoken by the front's bundled voice, past the hung copy.
        await back.start()
        await wait_until(lambda: remote.reachable)
        caplog.clear()
        async with AsyncTcpClient("127.0.0.1", front.port) as client:
            await client.write_event(Synthesize(text=STORY, voice=SynthesizeVoice(name=VOICE)).event())
            first_audio = await read_until(client, "audio-chunk")
            back.kill()
            rest = await read_until(client, "audio-stop")
        events = first_audio.events + rest.events
        assert [e.type for e in events].count("audio-start") == 1
        assert [e.type for e in events].count("audio-stop") == 1
        speakers = spoken_by(caplog)
        cut = [r for r in caplog.records if r.getMessage().startswith("remote failed after")]
        # The back spoke first: it was cut mid-sentence (which restarts locally) or had finished one.
        assert cut or speakers[0] == f"Spoken by remote voice {VOICE}", speakers
        assert speakers[-1] == f"Spoken by piper voice {VOICE}", speakers
        assert engines["indextts"].calls, "the front's own copy was not tried before the bundled voice"
        assert set(speakers) <= {f"Spoken by remote voice {VOICE}", f"Spoken by piper voice {VOICE}"}

        # Back again: found by the remote's own retries, and it speaks again.
        await back.start()
        await wait_until(lambda: remote.reachable)
        await asyncio.sleep(1.0)  # the breaker's cool-down after the failures above
        caplog.clear()
        await ask(front.port, "The dishwasher is done.")
        assert spoken_by(caplog) == [f"Spoken by remote voice {VOICE}"]


async def test_a_back_that_stops_answering_costs_one_deadline_not_the_read_timeout(piper, back, remote, caplog):
    """SIGSTOP: the kernel still accepts connections, nothing answers them."""
    caplog.set_level(logging.INFO)
    chain = ChainSettings(default_deadline=2.0, deadlines={"indextts": 1.0}, sentence_cap=30.0)
    async with running_server(front_engines(piper, remote), VOICE, chain=chain) as front:
        assert back.process is not None
        back.process.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        response = await ask(front.port, FIRST)
        elapsed = time.monotonic() - started
        assert_speech(response.audio, 22050, FIRST)
        assert spoken_by(caplog) == [f"Spoken by piper voice {VOICE}"]
        # 2 s for the remote, 1 s for the hung copy, then a local render: far below the 10 s
        # read timeout that a render blocked in the socket would have cost.
        assert elapsed < SETTINGS.read_timeout, f"{elapsed:.1f} s"


async def test_a_front_started_while_the_back_is_away_keeps_its_last_voices(piper, back, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    saved = tmp_path / "front" / "remote-voices.json"
    earlier = RemoteEngine(back.uri, settings=SETTINGS, voices_file=saved)
    assert earlier.start()
    earlier.close()
    back.kill()
    later = RemoteEngine(back.uri, settings=SETTINGS, voices_file=saved)
    try:
        assert not later.start()
        assert later.voices() == earlier.voices() and [v.name for v in later.voices() if not v.name.startswith("kokoro-")] == [VOICE]
        # Its voice may be the default; its sentences go straight to the local copy meanwhile.
        async with running_server({"remote": later, "piper": piper}, VOICE) as front:
            assert front.catalogue.default_voice.engine == "remote"
            response = await ask(front.port, FIRST)
            assert_speech(response.audio, 22050, FIRST)
            assert spoken_by(caplog) == [f"Spoken by piper voice {VOICE}"]
            await back.start()
            await wait_until(lambda: later.reachable)
    finally:
        later.close()


async def test_the_cli_front_advertises_and_speaks_the_backs_voices(back, tmp_path):
    async with server_process(tmp_path / "front.log", "--data-dir", str(tmp_path / "front"), "--remote", back.uri) as port:
        # Learned at start-up, or in the background soon after when the back was slow to answer.
        await wait_until(lambda: f"Remote remote ({back.uri}) answers" in (tmp_path / "front.log").read_text(), 30.0)
        info = await describe(port)
        # The back's voices (its bundled Mandarin ones too), once each: the local twin is hidden.
        assert [v.name for v in info.tts[0].voices if not v.name.startswith("kokoro-")] == [VOICE]
        response = await ask(port, FIRST)
        assert_speech(response.audio, 22050, FIRST)
    assert f"Remote remote ({back.uri}) answers" in (tmp_path / "front.log").read_text()
    assert f"Spoken by remote voice {VOICE}" in (tmp_path / "front.log").read_text()
    assert back.spoken() == 1
    assert (tmp_path / "front" / "remotes" / f"127.0.0.1_{back.port}.json").is_file()


@pytest.mark.parametrize("uri", ["http://host:10200", "tcp://host", "host:10200", "tcp://:10200", "tcp://host:1/path"])
def test_a_bad_remote_uri_is_refused(uri):
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        parse_remote_uri(uri)


def test_a_bad_remote_uri_is_one_line_on_the_command_line():
    result = run_cli("--remote", "http://host:10200")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--remote" in result.stderr and "tcp://HOST:PORT" in result.stderr
