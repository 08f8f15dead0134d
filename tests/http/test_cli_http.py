"""`--http-uri` and `--http-token` as a user runs them: a real server process."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from tests.conftest import read_until
from tests.test_cli import SERVER, free_port, run_cli, wait_for_port
from tests.http.conftest import WAV_HEADER_BYTES


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--http-uri", "http://0.0.0.0:10210"], "--http-token"),
        (["--http-uri", "tcp://127.0.0.1:10210"], "http://HOST:PORT"),
        (["--http-uri", "http://127.0.0.1"], "no port"),
        (["--http-uri", "http://127.0.0.1:10210", "--http-trusted-peer", "the-proxy"], "must be an IP address"),
        (["--http-uri", "http://127.0.0.1:10210", "--http-trusted-proxy", "nginx"], "--http-trusted-proxy must be an IP address"),
    ],
)
def test_bad_http_settings_are_one_line_and_exit_code_2(tmp_path, args, complaint):
    result = run_cli("--data-dir", str(tmp_path), *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and complaint in lines[0], result.stderr


async def test_one_process_serves_wyoming_and_http_from_one_cache(tmp_path):
    port, http_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            *SERVER, "--uri", f"tcp://127.0.0.1:{port}", "--http-uri", f"http://127.0.0.1:{http_port}", "--data-dir", str(tmp_path),
            "--http-allowed-host", "tts.lan", "--http-trusted-proxy", "127.0.0.1", "--http-trusted-peer", "127.0.0.2",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    text = "The washing machine has finished."
    try:
        await wait_for_port(port, process)
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Synthesize(text=text).event())
            spoken = await read_until(client, "audio-stop")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=60) as http:
            assert (await http.get("/health")).json()["status"] == "ready"
            response = await http.post("/tts", json={"text": text})
            stats = (await http.get("/health")).json()["cache"]
            # The flags reach the server: a Host name of its own, a proxy that names its client.
            assert (await http.get("/v1/voices", headers={"Host": "tts.lan"})).status_code == 200
            assert (await http.get("/v1/voices", headers={"Host": "elsewhere.example"})).status_code == 400
            assert (await http.delete("/v1/voices/x")).status_code == 403  # no token on this server
            forwarded = await http.delete("/v1/voices/x", headers={"X-Forwarded-For": "127.0.0.2"})
            assert forwarded.status_code == 409, forwarded.text  # the trusted peer, behind the trusted proxy
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert response.content[WAV_HEADER_BYTES:] == spoken.audio
    assert stats["memory_hits"] == 1 and stats["misses"] == 1
    assert stderr.count("Spoken by piper") == 1, stderr
    assert process.returncode in (0, -15), stderr
