"""What the benchmarks measure with, shared: free ports and server readiness, the process's own
memory from /proc, percentiles, milliseconds as text, cosine similarity, measured children that
answer in one JSON line, exports kept until the exporter changes, and the texts folder (`--texts`). Writing RESULTS.md, the machine and
its load are in _report.py."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_TEXTS = Path(__file__).resolve().parents[2] / "shared" / "texts"
"""The project's shared texts: the `shared/` folder beside the repository, as in CI."""


def add_texts_argument(parser: argparse.ArgumentParser, needs: str = "the shared text files") -> None:
    parser.add_argument(
        "--texts",
        type=Path,
        default=SHARED_TEXTS,
        metavar="DIR",
        help=f"folder with {needs} (default: shared/texts beside the repository, {SHARED_TEXTS})",
    )


def text_lines(folder: Path, names: Sequence[str]) -> list[str]:
    """The non-blank lines of the named text files, stripped, in order."""
    return [line.strip() for name in names for line in (folder / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_ready(port: int, timeout: float = 120) -> None:
    """Until the server on `port` answers a Wyoming describe."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b'{"type": "describe"}\n')
            await writer.drain()
            if await asyncio.wait_for(reader.readline(), 5):
                writer.close()
                return
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.5)
    raise RuntimeError("server did not become ready")


def proc_status_mib(field: str, pid: int | str = "self", default: float | None = None) -> float:
    """A memory line of /proc/PID/status (VmRSS: resident now, VmHWM: its peak) in MiB. VmHWM is
    the process's own peak; ru_maxrss would carry the parent's across fork + exec on Linux.
    A field the file lacks (a process on its way out) gives `default`, or KeyError without one."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    if default is None:
        raise KeyError(field)
    return default


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(seconds: float | None, digits: int = 0) -> str:
    """Seconds as milliseconds for a table; None (nothing measured) as n/a."""
    return "n/a" if seconds is None else f"{seconds * 1000:.{digits}f}"


def cosine(a: Any, b: Any) -> float:
    import numpy as np

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def run_json_child(command: Sequence[str], what: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A measured child process (a fresh interpreter, so no measurement carries another's memory
    or warm caches) that prints its result as the last line of stdout, in JSON; its stderr goes
    to ours. A child that fails stops the benchmark."""
    result = subprocess.run(list(command), stdout=subprocess.PIPE, text=True, env=None if env is None else dict(env))
    if result.returncode != 0:
        raise SystemExit(f"{what} run failed (exit {result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


def export_once(argv: Sequence[str], out: Path) -> Path:
    """`wyoming-indextts export ARGV --out OUT --force`, skipped while `out` holds an export made
    by the exporter's current code (a stamp of its sources sits beside the folder), so a
    benchmark never measures stale graphs."""
    from wyoming_indextts.export.cli import main

    stamp = out.parent / f"{out.name}.exporter-sha256"
    digest = hashlib.sha256()
    for source in sorted((ROOT / "wyoming_indextts" / "export").glob("*.py")):
        digest.update(source.read_bytes())
    if (out / "manifest.json").is_file() and stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return out
    code = main([*argv, "--out", str(out), "--force"])
    if code != 0:
        raise SystemExit(f"export failed with exit code {code}")
    stamp.write_text(digest.hexdigest())
    return out
