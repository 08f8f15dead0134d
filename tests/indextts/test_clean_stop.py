"""SIGTERM and SIGINT stop the real server process cleanly while the tiny IndexTTS model renders
(issue 21, item 7): exit code 0, no C++ abort from ONNX Runtime threads still running at exit,
and every cache file on disk intact."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.indextts.conftest import voiced_clip, write_clip
from wyoming_indextts.cache import DiskCache

ROOT = Path(__file__).resolve().parents[2]
ANNOUNCEMENTS = [f"Announcement number {n} for the house, said slowly and clearly." for n in range(40)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python -m wyoming_indextts` with the tiny model, its stderr collected in a thread."""

    def __init__(self, tiny_model_dir: Path, root: Path) -> None:
        voices = root / "voices"
        write_clip(voices / "nainai.wav", voiced_clip(3.0, 22050, seed=4), 22050)
        listed = root / "announcements.txt"
        listed.write_text("\n".join(ANNOUNCEMENTS) + "\n", encoding="utf-8")
        self.data = root / "data"
        command = [
            sys.executable, "-m", "wyoming_indextts",
            "--uri", f"tcp://127.0.0.1:{free_port()}",
            "--data-dir", str(self.data),
            "--indextts-model-dir", str(tiny_model_dir),
            "--voices-dir", str(voices),
            "--indextts-diffusion-steps", "8",
            "--voice", "nainai",
            "--prerender", f"nainai={listed}",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for(self, words: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(words in line for line in self.lines):
            assert self.process.poll() is None, "the server exited:\n" + "".join(self.lines[-30:])
            assert time.monotonic() < deadline, f"no {words!r} in the log within {timeout:g} s:\n" + "".join(self.lines[-30:])
            time.sleep(0.05)

    def stop(self, signum: int, timeout: float = 60) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout)
        self._reader.join(10)
        return code


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_prerendering_exits_cleanly_and_keeps_the_cache_intact(tiny_model_dir, tmp_path, signum):
    server = ServerProcess(tiny_model_dir, tmp_path)
    try:
        # One batch done, the next one rendering in ONNX Runtime right now (a sentence the tiny
        # model cannot say counts as done too, so no particular number is sure to be logged).
        server.wait_for("Pre-rendered ", timeout=300)
        code = server.stop(signum)
    finally:
        if server.process.poll() is None:
            server.process.kill()
    log = "".join(server.lines)
    assert code == 0, log[-3000:]
    assert "terminate called" not in log and "Traceback" not in log, log[-3000:]
    assert "Server stopped" in log
    cache = DiskCache(server.data / "cache", 1 << 30)
    files = list((server.data / "cache").glob("*/*"))
    assert files, "nothing was cached before the signal"
    for path in files:
        assert path.suffix == ".pcm", f"a partial write was left behind: {path.name}"
        assert cache.get(path.stem) is not None, f"{path.name} is not a valid entry"
