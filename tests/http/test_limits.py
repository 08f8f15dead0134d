"""What a client cannot hold or break: a lone surrogate is a 400, a request head that never
completes and a body that stops arriving free their connection, and connections beyond the
cap are answered at once instead of using up the file descriptors Wyoming needs."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx
import pytest

from wyoming_indextts.http import HttpSettings, guard, server

from tests.http.conftest import live_server

LONE_SURROGATE_BODIES = [
    ("/tts", b'{"text": "Hi \\ud800 there."}'),
    ("/tts", b'{"text": "Hi.", "voice": "\\udfff"}'),
    ("/v1/audio/speech", b'{"model": "m", "input": "\\ud83d"}'),
    ("/v1/prerender", b'{"voice": "en_US-joe-medium", "text": "Hi \\ud800."}'),
    ("/v1/prerender/remove", b'{"voice": "\\ud800", "text": "Hi."}'),
]


TOKEN = "limits-token"
AUTHORIZED = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def live(piper, tmp_path):
    with live_server({"piper": piper}, settings=HttpSettings(token=TOKEN), prerender_dir=tmp_path / "prerender") as server:
        yield server


def raw(live) -> socket.socket:
    return socket.create_connection(("127.0.0.1", live.http.port), timeout=30)


def closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent before closing; fails if it kept the connection open."""
    sock.settimeout(seconds)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(4096):
            received += chunk
    return received


@pytest.mark.parametrize(("path", "body"), LONE_SURROGATE_BODIES)
def test_a_lone_surrogate_is_a_clear_400(live, path, body):
    response = httpx.post(f"{live.base_url}{path}", content=body, headers={"content-type": "application/json", **AUTHORIZED}, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "lone surrogate" in error["message"] and error["code"] == "invalid_text"
    assert httpx.post(f"{live.base_url}/tts", json={"text": "Still here."}, timeout=60).status_code == 200


def test_a_request_head_that_never_completes_is_closed(live, monkeypatch):
    monkeypatch.setattr(server, "REQUEST_HEAD_SECONDS", 1.0)
    with raw(live) as silent, raw(live) as dripping:
        dripping.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        for _ in range(10):  # a header line every 0.3 s: each arrives before any idle timeout
            with contextlib.suppress(OSError):
                dripping.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.3)
        assert closed_within(dripping, 10) == b""
        assert closed_within(silent, 10) == b""
        assert time.monotonic() - started < 10
    # A kept-alive connection gets the same deadline for its next request's head.
    with raw(live) as kept:
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert kept.recv(12) == b"HTTP/1.1 200"
        kept.sendall(b"GET /health HTTP/1.1\r\n")
        assert b"X-Slow" not in closed_within(kept, 10)
    assert httpx.get(f"{live.base_url}/health").status_code == 200


def test_a_body_that_stops_arriving_gets_408(live, monkeypatch):
    monkeypatch.setattr(guard, "BODY_IDLE_SECONDS", 1.0)
    with raw(live) as stalled:
        stalled.sendall(b"POST /tts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"text\":")
        reply = closed_within(stalled, 10)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"stopped arriving" in reply


def test_connections_beyond_the_cap_are_answered_503_at_once(live, monkeypatch):
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 4)
    held = [raw(live) for _ in range(4)]
    try:
        with raw(live) as extra:
            reply = closed_within(extra, 10)
        assert reply.startswith(b"HTTP/1.1 503") and b'"code": "busy"' in reply, reply[:200]
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 30
    while True:  # the held ones are gone once the server has seen them close
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{live.base_url}/health", timeout=5).status_code == 200:
                break
        assert time.monotonic() < deadline
        time.sleep(0.2)
