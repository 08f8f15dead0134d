"""The command line as a user runs it: a real process, over TCP and over stdio."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.event import async_read_event, async_write_event
from wyoming.info import Describe
from wyoming.tts import Synthesize

from wyoming_indextts import __version__

from .conftest import Response, assert_speech, read_until

SERVER = [sys.executable, "-m", "wyoming_indextts"]
SCRIPT = Path(sys.executable).with_name("wyoming-indextts")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--max-concurrent", "0"], "--max-concurrent"),
        (["--cache-memory-mb", "-5"], "--cache-memory-mb"),
        (["--uri", "ftp://example"], "--uri"),
        (["--deadline", "soon"], "--deadline"),
        (["--deadline", "warp=3"], "unknown engine"),
        (["--fallback", "espeak"], "unknown engine"),
        (["--fallback-voice", "zh"], "KEY=VALUE"),
        (["--zeroconf", "--uri", "stdio://"], "--zeroconf"),
        (["--voice", "nobody"], "nobody"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_a_bad_value_is_one_line_and_exit_code_2(tmp_path, args, complaint):
    result = run_cli("--data-dir", str(tmp_path), *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wyoming-indextts: error:") and complaint in lines[0]


def test_arguments_from_the_environment_are_applied(tmp_path):
    result = run_cli("--data-dir", str(tmp_path), env={"WYOMING_INDEXTTS_ARGS": "--max-concurrent 0"})
    assert result.returncode == 2 and "--max-concurrent" in result.stderr


def test_version_from_module_and_console_script():
    assert run_cli("--version").stdout.strip() == __version__
    result = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == __version__


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def server_process(log: Path, *flags: str) -> AsyncIterator[int]:
    """`python -m wyoming_indextts --uri tcp://127.0.0.1:PORT FLAGS...`, its stderr written to
    `log`: yields the port once it accepts connections, and terminates the process after."""
    port = free_port()
    with open(log, "w") as stderr:
        process = subprocess.Popen([*SERVER, "--uri", f"tcp://127.0.0.1:{port}", *flags], stderr=stderr)
    try:
        await wait_for_port(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_tcp_server_process_speaks_and_caches_in_its_data_dir(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [*SERVER, "--uri", f"tcp://127.0.0.1:{port}", "--data-dir", str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await wait_for_port(port, process)
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Synthesize(text="Someone is at the front door.").event())
            response = await read_until(client, "audio-stop")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert_speech(response.audio, response.rate, "Someone is at the front door.")
    assert list((tmp_path / "cache").glob("*/*.pcm")), "the sentence was not written to the disk cache"
    assert "Spoken by piper voice en_US-joe-medium" in stderr


async def test_stdio_server_speaks_over_its_pipes(tmp_path):
    process = await asyncio.create_subprocess_exec(
        *SERVER, "--uri", "stdio://", "--data-dir", str(tmp_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        await async_write_event(Describe().event(), process.stdin)
        await async_write_event(Synthesize(text="Timer finished.").event(), process.stdin)
        response = Response()
        async with asyncio.timeout(60):
            while not response.events or response.events[-1].type != "audio-stop":
                event = await async_read_event(process.stdout)
                assert event is not None
                response.events.append(event)
    finally:
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 30)
    assert response.types == ["info", "audio-start", "audio-chunk", "audio-stop"]
    assert_speech(response.audio, response.rate, "Timer finished.")


def test_sambert_voices_are_advertised_only_when_configured(tmp_path, monkeypatch, caplog):
    from wyoming_indextts.__main__ import parse_args
    from wyoming_indextts.service import load_engines
    from wyoming_indextts.voices import VoiceCatalogue

    for key in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "NLS_APPKEY"):
        monkeypatch.delenv(key, raising=False)
    args = parse_args(["--data-dir", str(tmp_path)], environ={})
    assert set(load_engines(args)) == {"piper", "kokoro"}

    # Configured, but nothing answers on loopback: advertised anyway (the cloud may come back),
    # with a warning that says so, and no traffic leaves this machine.
    credentials = tmp_path / "nls.env"
    credentials.write_text(
        "ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tExampleKeyId01\nALIBABA_CLOUD_ACCESS_KEY_SECRET=secret-value\n"
        "NLS_APPKEY=appkey1\nNLS_TOKEN_DOMAIN=127.0.0.1\nNLS_GATEWAY_URL=http://127.0.0.1:9/stream/v1/tts\n"
    )
    args = parse_args(["--data-dir", str(tmp_path), "--sambert-credentials", str(credentials)], environ={})
    with caplog.at_level("WARNING"):
        engines = load_engines(args)
    assert set(engines) == {"piper", "kokoro", "sambert"}
    names = {voice.name for voice in VoiceCatalogue(engines, "en_US-joe-medium").info().tts[0].voices}
    assert {"sambert-xiaoyun", "sambert-harry", "en_US-joe-medium"} <= names
    assert "not reachable yet" in caplog.text
    assert "secret-value" not in caplog.text
