"""A remote that misbehaves: a stand-in on loopback answers `describe` properly, then answers
each sentence with a different kind of broken Wyoming. Each must end the sentence with an
EngineError (so the chain moves on), promptly, without reading unbounded data into memory."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from wyoming_indextts.engines.base import EngineError
from wyoming_indextts.engines.remote import RemoteEngine, RemoteSettings

INFO = {
    "type": "info",
    "data": {
        "tts": [
            {
                "name": "stand-in",
                "attribution": {"name": "", "url": ""},
                "installed": True,
                "description": "",
                "version": None,
                "voices": [
                    {"name": "x", "attribution": {"name": "", "url": ""}, "installed": True,
                     "description": "", "version": None, "languages": ["en"]}
                ],
                "supports_synthesize_streaming": False,
            }
        ]
    },
}


def line(event_type: str, data: dict | None = None, payload: bytes = b"") -> bytes:
    header: dict = {"type": event_type, "version": "1.0.0"}
    body = b""
    if data:
        body = json.dumps(data).encode()
        header["data_length"] = len(body)
    if payload:
        header["payload_length"] = len(payload)
    return json.dumps(header).encode() + b"\n" + body + payload


START = line("audio-start", {"rate": 22050, "width": 2, "channels": 1})
ANSWERS = {
    "not json": b"this is not an event\n",
    "endless header": b"{" + b" " * (2 << 20),
    "enormous payload": START + json.dumps({"type": "audio-chunk", "payload_length": 10**12}).encode() + b"\n",
    "32-bit stereo": line("audio-start", {"rate": 22050, "width": 4, "channels": 2}),
    "an error event": line("error", {"text": "voice x is broken"}),
    "cut mid-payload": START + json.dumps({"type": "audio-chunk", "payload_length": 4000}).encode() + b"\n" + b"\0" * 10,
    "chunks, then gone": START + line("audio-chunk", {"rate": 22050, "width": 2, "channels": 1}, b"\0\1" * 500),
}


class StandIn:
    """Answers describe with INFO, anything else with `answer`, then closes."""

    def __init__(self) -> None:
        self.answer = b""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as reader:
                header = json.loads(reader.readline())
                if header.get("data_length"):
                    reader.read(header["data_length"])
                if header["type"] == "describe":
                    conn.sendall(line("info", INFO["data"]))
                else:
                    try:
                        conn.sendall(self.answer)
                    except OSError:
                        pass  # the engine gave up reading: that is the point


@pytest.fixture(scope="module")
def stand_in():
    server = StandIn()
    yield server
    server.listener.close()


@pytest.mark.parametrize("kind", list(ANSWERS))
def test_a_broken_answer_is_an_engine_error(stand_in, kind):
    stand_in.answer = ANSWERS[kind]
    engine = RemoteEngine(f"tcp://127.0.0.1:{stand_in.port}", settings=RemoteSettings(read_timeout=5.0))
    assert engine.refresh()
    [voice] = engine.voices()
    assert voice.extra == {"streaming": "false"}
    with pytest.raises(EngineError) as raised:
        for _ in engine.synthesize("Hello there.", voice):
            pass
    if kind == "an error event":
        assert "voice x is broken" in str(raised.value)
    if kind == "endless header":
        assert "event header over" in str(raised.value)
    if kind == "enormous payload":
        assert "payload_length" in str(raised.value)


def test_a_remote_found_away_fails_its_sentences_at_once(stand_in):
    engine = RemoteEngine(f"tcp://127.0.0.1:{stand_in.port}")
    assert engine.refresh()
    [voice] = engine.voices()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    engine._address = ("127.0.0.1", port)  # the same remote, gone
    assert not engine.refresh() and not engine.reachable
    assert engine.voices() == [voice]  # its voices stay, so requests for them reach the chain
    with pytest.raises(EngineError, match="unreachable"):
        next(iter(engine.synthesize("Hello there.", voice)))
