"""Shared by every benchmark: its section of RESULTS.md and the machine it ran on.

Each benchmark owns one section between `<!-- BEGIN name -->` and `<!-- END name -->`;
writing it leaves the other benchmarks' sections as they are.
"""

from __future__ import annotations

import fcntl
import os
import platform
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_WORK = RESULTS.parent / ".work"  # gitignored: the lock and the half-written copy live here
_HEADER = (
    "# Benchmark results\n\n"
    "Each section is written by the benchmark named in its markers; run it again to refresh it "
    "(see README.md). Numbers from a busy machine are marked as such.\n"
)


def write_section(name: str, markdown: str) -> None:
    """Put `markdown` between this benchmark's markers in RESULTS.md, replacing the old
    section or appending a new one; the rest of the file is kept byte for byte."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{machine_paths_out(markdown.strip())}\n{end}"
    # Benchmarks may finish at the same time: the lock keeps one from losing the other's section.
    _WORK.mkdir(exist_ok=True)
    with open(_WORK / "RESULTS.md.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else _HEADER
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
        if pattern.search(text):
            text = pattern.sub(lambda _: block, text, count=1)
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        temporary = _WORK / "RESULTS.md.tmp"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, RESULTS)


_TEMPORARY = re.compile(r"/tmp/[^\s`'\")]+")
_VENV_PYTHON = re.compile(r"(?:[^\s`'\"(]*/)?\.venv/bin/python3?\b")


def machine_paths_out(markdown: str) -> str:
    """The text with this machine's paths made readable anywhere: the repository's own path
    dropped (commands run from its root), any venv's python as `.venv/bin/python` (what
    script/run and script/test make), and temporary folders as `$TMP/...`."""
    markdown = _VENV_PYTHON.sub(".venv/bin/python", markdown)
    markdown = markdown.replace(f"{RESULTS.parent.parent}/", "")
    markdown = markdown.replace(f"{RESULTS.parent.parent.parent / 'shared'}", "../shared")
    return _TEMPORARY.sub("$TMP/...", markdown)


def load_average() -> float:
    """The 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


class LoadMonitor:
    """Samples the 1-minute load average in the background while a benchmark measures, so a
    result can say whether other work on the machine was competing for the cores."""

    def __init__(self, interval: float = 5.0) -> None:
        self.samples: list[float] = []
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-monitor", daemon=True)

    def __enter__(self) -> "LoadMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append(load_average())
            if self._stop.wait(self._interval):
                return

    def busy(self) -> bool:
        """More runnable work than cores at some point: the timings are likely inflated."""
        return bool(self.samples) and max(self.samples) > (os.cpu_count() or 1)

    def summary(self) -> str:
        if not self.samples:
            return "load average not sampled"
        low, high = min(self.samples), max(self.samples)
        mean = sum(self.samples) / len(self.samples)
        verdict = (
            f"**busy machine** (load above the {os.cpu_count()} cores): timings are noisy, re-run on a quiet machine"
            if self.busy()
            else "quiet enough"
        )
        return f"1-min load average during the run: min {low:.2f}, mean {mean:.2f}, max {high:.2f}: {verdict}"


def machine_description() -> str:
    """One line: CPU model, cores, memory, OS, Python, current load average."""
    loads = Path("/proc/loadavg").read_text().split()[:3]
    return (
        f"{_cpu_model()}, {os.cpu_count()} cores, {_memory_gib():.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"load average {' / '.join(loads)} (1/5/15 min)"
    )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    # ARM kernels leave "model name" out of /proc/cpuinfo; lscpu still knows.
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or "unknown CPU"
    for line in output.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / (1024 * 1024)
    return 0.0


def timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def command_line() -> str:
    """How this benchmark was started, with paths relative to the repository when inside it."""
    repo = RESULTS.parent.parent
    words = [sys.executable, sys.argv[0]]
    shown = [os.path.relpath(w, repo) if Path(w).absolute().is_relative_to(repo) else w for w in words]
    return machine_paths_out(shlex.join([*shown, *sys.argv[1:]]))
