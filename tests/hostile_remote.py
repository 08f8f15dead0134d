"""A stand-in remote Wyoming TTS server on loopback that answers `describe` properly and each
sentence with whatever it is told: fixed bytes, a scripted answer (sends, stalls, hang-ups), or
fuzzed events from `hostile_answer`.

Used by tests/test_remote_guard.py (one fault at a time), tests/test_remote_fuzz.py and
benchmarks/remote_fuzz.py (fuzzed answers, with the front server health-checked between
batches).
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Step = bytes | float | str
"""One step of an answer: bytes to send, seconds to stall, or `HANG_UP` (a reset)."""
HANG_UP = "hang up"


def info_data(voice: str, streaming: bool = False, version: str | None = None) -> dict:
    return {
        "tts": [
            {
                "name": "stand-in",
                "attribution": {"name": "", "url": ""},
                "installed": True,
                "description": "",
                "version": None,
                "voices": [
                    {"name": voice, "attribution": {"name": "", "url": ""}, "installed": True,
                     "description": "", "version": version, "languages": ["en"]}
                ],
                "supports_synthesize_streaming": streaming,
            }
        ]
    }


def line(event_type: str, data: dict | None = None, payload: bytes = b"") -> bytes:
    """One event as a Wyoming server writes it."""
    header: dict = {"type": event_type, "version": "1.0.0"}
    body = b""
    if data:
        body = json.dumps(data).encode()
        header["data_length"] = len(body)
    if payload:
        header["payload_length"] = len(payload)
    return json.dumps(header).encode() + b"\n" + body + payload


FORMAT = {"rate": 22050, "width": 2, "channels": 1}
START = line("audio-start", FORMAT)
STOP = line("audio-stop")


def tone(seconds: float, rate: int = 22050) -> bytes:
    """A 200 Hz tone as int16 mono: audio that is plainly not silence."""
    times = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * 200 * times)).astype("<i2").tobytes()


def chunk(audio: bytes, fmt: dict | None = None) -> bytes:
    return line("audio-chunk", fmt or FORMAT, audio)


Answer = bytes | list[Step] | Callable[[], list[Step]]


class StandIn:
    """Answers describe with `info_data(voice)`, anything else with `answer`, each connection
    in a thread of its own. `mute` makes it accept connections and never answer (describe
    included). Counts the describes, the sentences asked and the answer events sent.

    `new_version_each_describe` gives the voice a new version at each describe, hence a new
    cache key: a fuzz must keep reaching the remote, and the front caches what the remote
    happened to answer well."""

    def __init__(self, voice: str = "x", answer: Answer = b"", new_version_each_describe: bool = False) -> None:
        self.voice = voice
        self.answer: Answer = answer
        self.new_version_each_describe = new_version_each_describe
        self.mute = False
        self.describes = 0
        self.sentences = 0
        self.events = 0
        self._count_lock = threading.Lock()
        self._held: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.listener.close()
        for conn in self._held:
            conn.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.mute:
                self._held.append(conn)  # open and silent, as a frozen server's kernel keeps it
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            with conn, conn.makefile("rb") as reader:
                header = json.loads(reader.readline())
                if header.get("data_length"):
                    reader.read(header["data_length"])
                if header["type"] == "describe":
                    with self._count_lock:
                        self.describes += 1
                    version = str(self.describes) if self.new_version_each_describe else None
                    conn.sendall(line("info", info_data(self.voice, version=version)))
                    return
                with self._count_lock:
                    self.sentences += 1
                answer = self.answer() if callable(self.answer) else self.answer
                self._play(conn, [answer] if isinstance(answer, bytes) else answer)
        except (OSError, ValueError):
            pass  # the engine gave up reading, or hung up first: that is the point

    def _play(self, conn: socket.socket, steps: list[Step]) -> None:
        for step in steps:
            if step == HANG_UP:
                # A reset, as from a machine that lost power mid-answer.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if isinstance(step, float):
                time.sleep(step)
                continue
            assert isinstance(step, bytes)
            with self._count_lock:
                self.events += 1
            conn.sendall(step)


# Values a broken or hostile remote might put where a number belongs. Python's json writes
# NaN and Infinity as bare words, as a careless server would.
ODD_NUMBERS: list[object] = [
    float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 0, 1, 2, -22050, 7999, 192001, 2**63,
    22050.5, "22050", None, True, [], {}, 3, 4, 5, -1,
]
GOOD_RATES = [8000, 16000, 22050, 24000, 44100, 48000, 192000]
SAMPLES = b"\1\0" * 500
KNOWN_FAULTS: list[list[Step]] = [
    # Each froze or flooded the server once: soxr never returned from a NaN, infinite (JSON's
    # 1e999 reads as inf) or 1e308 rate, holding the GIL; 2 Hz made 500 samples 250 s of audio.
    [b'{"type": "audio-start", "data": {"rate": NaN, "width": 2, "channels": 1}}\n', STOP],
    [b'{"type": "audio-start", "data": {"rate": 1e999, "width": 2, "channels": 1}}\n' + chunk(SAMPLES), STOP],
    [line("audio-start", {**FORMAT, "rate": 1e308}), chunk(SAMPLES), STOP],
    [line("audio-start", {**FORMAT, "rate": 2}), chunk(SAMPLES), STOP],
    [START, chunk(SAMPLES), chunk(SAMPLES, {**FORMAT, "rate": 1e308}), STOP],
]
"""Answers that once broke the server, sent often so that a short fuzz meets each of them."""
ODD_TYPES = ["ping", "info", "synthesize", "transcript", "", "x" * 300, "audio-chunk ", "AUDIO-START"]
ODD_LENGTHS: list[object] = [-1, 10**12, 2**63, 1.5, "7", None, [], float("nan"), 0, (4 << 20) + 1]


@dataclass
class HostileAnswers:
    """Fuzzed answers to one sentence: mostly broken, some odd but valid, a few stalls and
    hang-ups. Stalls are short: the front's deadline for the remote must be shorter still."""

    rng: random.Random
    stall: float = 1.5

    def __call__(self) -> list[Step]:
        rng = self.rng
        if rng.random() < 0.1:
            return list(rng.choice(KNOWN_FAULTS))
        steps: list[Step] = []
        opening = rng.random()
        if opening < 0.35:
            fmt = self._odd_format(rng)
        elif opening < 0.55:
            fmt = {"rate": rng.choice(GOOD_RATES), "width": rng.randint(1, 4), "channels": rng.randint(1, 2)}
        else:
            fmt = dict(FORMAT)
        if opening < 0.9:  # the rest send no audio-start, or send something else first
            steps.append(line("audio-start", fmt))
        for _ in range(rng.randint(1, 12)):
            kind = rng.random()
            if kind < 0.03:
                steps.append(line("audio-start", self._odd_format(rng)))
            elif kind < 0.45:
                sizes = [fmt.get("width"), fmt.get("channels")]
                frame = sizes[0] * sizes[1] if all(type(n) is int and 0 < n < 9 for n in sizes) else 2
                size = rng.choice([0, frame, frame * rng.randint(1, 2000), rng.randint(1, 5000), frame * 1024])
                said = fmt if rng.random() < 0.9 else self._odd_format(rng)
                steps.append(chunk(rng.randbytes(size), said))
            elif kind < 0.53:
                steps.append(self._odd_header(rng))
            elif kind < 0.59:
                body = rng.randbytes(rng.randint(1, 300)).replace(b"\n", b" ")
                steps.append(json.dumps({"type": "audio-chunk", "data_length": len(body)}).encode() + b"\n" + body)
            elif kind < 0.63:
                steps.append(rng.randbytes(rng.randint(1, 200)).replace(b"\n", b" ") + b"\n")
            elif kind < 0.68:
                steps.append(line(rng.choice(ODD_TYPES), {"text": "x" * rng.randint(0, 3000)}))
            elif kind < 0.71:
                steps.append(line("error", {"text": rng.choice(["voice is broken", "y" * 5000, None, 5])}))
            elif kind < 0.74:
                # Truncated: a header that promises more than follows.
                steps.append(json.dumps({"type": "audio-chunk", "data": FORMAT, "payload_length": 4000}).encode() + b"\n" + b"\0" * rng.randint(0, 3999))
                break
            elif kind < 0.76:
                steps.append(b"[" * rng.choice([100, 5000, 60000]) + b"\n")
            elif kind < 0.78:
                steps.append(b"{" + b" " * rng.choice([1000, 70000, 200000]))
                break
            elif kind < 0.81:
                steps.append(rng.uniform(0.05, self.stall))
            elif kind < 0.84:
                steps.append(HANG_UP)
                break
            elif kind < 0.86:
                # Much more audio than a short text can take.
                steps.append(chunk(bytes(22050 * 2 * 30), FORMAT))
            else:
                steps.append(STOP)
                if rng.random() < 0.7:
                    break
        return steps

    @staticmethod
    def _odd_format(rng: random.Random) -> dict:
        fmt = dict(FORMAT)
        # Mostly one odd value among good ones, so each check is reached on its own.
        for key in rng.sample(["rate", "width", "channels"], 1 if rng.random() < 0.7 else rng.randint(2, 3)):
            fmt[key] = rng.choice(ODD_NUMBERS)
        if rng.random() < 0.1:
            del fmt[rng.choice(list(fmt))]
        return fmt

    @staticmethod
    def _odd_header(rng: random.Random) -> bytes:
        key = rng.choice(["data_length", "payload_length"])
        value = rng.choice(ODD_LENGTHS)
        text = json.dumps({"type": rng.choice(["audio-chunk", "audio-start", "ping"]), key: value})
        return text.encode() + b"\n"
