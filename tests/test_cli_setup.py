"""What a new user meets first: the environment file as Docker reads it, which source of flags
wins, messages without internal names, a clean stop on SIGTERM, --help and the healthcheck.
Real processes and sockets throughout."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from wyoming_indextts.__main__ import ENV_ARGS, env_arguments, parse_args

from .conftest import assert_speech, read_until
from .test_cli import SERVER, free_port, run_cli, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = ROOT / "config" / "wyoming-indextts.env"
HEALTHCHECK = [sys.executable, "-m", "wyoming_indextts.healthcheck"]


def docker_env_file(path: Path) -> dict[str, str]:
    """`docker run --env-file` (docker/cli opts/envfile.go, parseKeyValueFile): leading
    whitespace trimmed, `#` lines and blank lines skipped, the name must hold no whitespace, and
    the value is everything after the first `=`, kept as is: no quote removal, no expansion."""
    env: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.removeprefix("\ufeff") if number == 1 else raw
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert name and not any(c in name for c in " \t"), f"Docker rejects line {number}: {raw!r}"
        if sep:
            env[name] = value
        elif name in os.environ:
            env[name] = os.environ[name]
    return env


def test_docker_keeps_the_quotes_of_the_env_file_example():
    value = docker_env_file(ENV_EXAMPLE)[ENV_ARGS]
    assert value.startswith('"') and value.endswith('"'), "the example no longer shows the case it must survive"
    args = parse_args([], {ENV_ARGS: value})
    assert args.data_dir == Path("/var/lib/wyoming-indextts")
    assert args.deadline == [(None, 8.0), ("indextts", 15.0)]
    assert args.zeroconf == "indextts"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('"--voice grandma --deadline 8"', ["--voice", "grandma", "--deadline", "8"]),  # docker --env-file
        ("'--voice grandma --deadline 8'", ["--voice", "grandma", "--deadline", "8"]),
        ("--voice grandma --deadline 8", ["--voice", "grandma", "--deadline", "8"]),  # systemd, shells
        ("--voices-dir '/srv/my voices' --voice grandma", ["--voices-dir", "/srv/my voices", "--voice", "grandma"]),
        ("\"--voices-dir '/srv/my voices' --voice grandma\"", ["--voices-dir", "/srv/my voices", "--voice", "grandma"]),
        ('--voices-dir "/srv/my voices"', ["--voices-dir", "/srv/my voices"]),
        ("--zeroconf", ["--zeroconf"]),
    ],
)
def test_environment_arguments_split_the_same_from_every_source(value, words):
    assert env_arguments(value) == words


def test_the_command_line_wins_over_the_environment():
    environ = {ENV_ARGS: "--data-dir /var/lib/x --voice grandma --deadline 8 --cache-memory-mb 10 --fallback-voice zh=a"}
    args = parse_args(["--data-dir", "/data", "--cache-memory-mb", "20", "--deadline", "5", "--fallback-voice", "zh=b"], environ)
    assert args.data_dir == Path("/data")
    assert args.cache_memory_mb == 20
    assert args.voice == "grandma"  # only in the environment: still applied
    assert args.deadline[-1] == (None, 5.0)  # the last overall deadline is the one used
    assert dict(args.fallback_voice)["zh"] == "b"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--max-concurrent", "many"], "argument --max-concurrent: expected a whole number, got 'many'"),
        (["--cache-disk-mb", "1.5"], "argument --cache-disk-mb: expected a whole number, got '1.5'"),
        (["--deadline", "soon"], "argument --deadline: expected a number, got 'soon'"),
        (["--deadline", "indextts=soon"], "argument --deadline: expected a number, got 'soon'"),
        (["--sentence-cap", "x"], "argument --sentence-cap: expected a number, got 'x'"),
        (["--zeroconf-host", "my-box.local"], "--zeroconf-host must be an IPv4 address, got 'my-box.local'"),
    ],
)
def test_bad_values_are_named_by_their_flag_not_by_internal_names(args, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(args, {})
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"wyoming-indextts: error: {expected}\n"


def test_help_mentions_export_and_the_environment_variable():
    result = run_cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "wyoming-indextts export --help" in text
    assert ENV_ARGS in text and "command line wins" in text
    assert "--zeroconf-host" in text


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_sigint_and_sigterm_both_stop_with_the_stopped_line(tmp_path, signum):
    port = free_port()
    process = subprocess.Popen([*SERVER, "--uri", f"tcp://127.0.0.1:{port}", "--data-dir", str(tmp_path)], stderr=subprocess.PIPE, text=True)
    try:
        await wait_for_port(port, process)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert stderr.rstrip().splitlines()[-1].endswith("Server stopped"), stderr


async def test_env_file_example_as_docker_passes_it_starts_and_the_command_line_keeps_the_cache(tmp_path):
    env = {**os.environ, **docker_env_file(ENV_EXAMPLE)}
    port = free_port()
    # The image's entry point puts --data-dir /data on the command line; here a temporary folder.
    process = subprocess.Popen([*SERVER, "--uri", f"tcp://0.0.0.0:{port}", "--data-dir", str(tmp_path)], stderr=subprocess.PIPE, text=True, env=env)
    try:
        await wait_for_port(port, process)
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Synthesize(text="The washing machine is done.").event())
            response = await read_until(client, "audio-stop")
        healthcheck = subprocess.run([*HEALTHCHECK, "--uri", f"tcp://127.0.0.1:{port}"], capture_output=True, text=True, timeout=60)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert_speech(response.audio, response.rate, "The washing machine is done.")
    assert list((tmp_path / "cache").glob("*/*.pcm")), "the cache is not in the command line's --data-dir"
    assert "Announced over zeroconf as indextts at " in stderr and " at 0.0.0.0:" not in stderr
    assert healthcheck.returncode == 0 and healthcheck.stdout.startswith("healthy: "), healthcheck.stderr


def test_healthcheck_fails_with_a_reason_when_nothing_answers():
    port = free_port()
    result = subprocess.run([*HEALTHCHECK, "--uri", f"tcp://127.0.0.1:{port}", "--timeout", "3"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith(f"unhealthy: tcp://127.0.0.1:{port}:")


async def test_healthcheck_fails_when_a_port_accepts_but_never_answers():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # holds the connection open, never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        process = await asyncio.create_subprocess_exec(
            *HEALTHCHECK, "--uri", f"tcp://127.0.0.1:{port}", "--timeout", "1", stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert b"no answer to describe" in stderr
