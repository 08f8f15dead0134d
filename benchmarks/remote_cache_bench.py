"""What the remote hop and the shared cache cost: real server processes on loopback, the real
`wyoming` client, a real redis-server.

    .venv/bin/python benchmarks/remote_cache_bench.py [--rounds 3]

- **remote hop**: the same texts asked of a back server directly and through a front started
  with `--remote` (both `--no-cache`, so every request renders on the back). Both run on this
  one machine, so this measures the protocol's overhead, not a LAN, and not a GPU (none here).
- **cache levels**: a repeated request answered from each cache level, with the memory cache
  off (`--cache-memory-mb 0`) to reach the level behind it: the disk cache, the shared cache on
  redis-server, and the memory cache (default settings) for reference.

TTFA = request sent → first audio-chunk; total = → audio-stop. Results go into RESULTS.md
(`remote_cache_bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from _common import add_texts_argument, free_port, text_lines
from _report import LoadMonitor, command_line, machine_description, timestamp, write_section

HERE = Path(__file__).resolve().parent
TEXT_FILES = ("announcements_en.txt", "replies_en.txt")
SECTION = "remote_cache_bench"
SERVER = [sys.executable, "-m", "wyoming_indextts"]


async def wait_for_port(port: int, timeout: float = 120.0) -> None:
    give_up = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > give_up:
                raise RuntimeError(f"nothing listens on port {port}") from None
            await asyncio.sleep(0.2)


async def start_server(work: Path, name: str, *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log = open(work / f"{name}.log", "w")
    process = subprocess.Popen(
        [*SERVER, "--uri", f"tcp://127.0.0.1:{port}", "--data-dir", str(work / name), *args], stderr=log
    )
    await wait_for_port(port)
    return process, port


async def measure(port: int, text: str) -> tuple[float, float]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        started = time.perf_counter()
        await client.write_event(Synthesize(text=text).event())
        first = None
        while True:
            event = await client.read_event()
            if event is None:
                raise RuntimeError(f"port {port} closed the connection for {text!r}")
            if event.type == "audio-chunk" and first is None:
                first = time.perf_counter() - started
            if event.type == "audio-stop":
                if first is None:
                    raise RuntimeError(f"no audio from port {port} for {text!r}")
                return first, time.perf_counter() - started


def summary(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    ttfa = sorted(s[0] for s in samples)
    totals = [s[1] for s in samples]
    p95 = ttfa[min(len(ttfa) - 1, round(0.95 * (len(ttfa) - 1)))]
    return statistics.median(ttfa) * 1000, p95 * 1000, statistics.median(totals) * 1000


async def run(texts: list[str], rounds: int, work: Path) -> str:
    redis_port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"],
        stdout=subprocess.DEVNULL,
    )
    processes = [redis]
    try:
        back, back_port = await start_server(work, "back", "--no-cache")
        processes.append(back)
        front, front_port = await start_server(work, "front", "--no-cache", "--remote", f"tcp://127.0.0.1:{back_port}")
        processes.append(front)
        disk, disk_port = await start_server(work, "disk", "--cache-memory-mb", "0")
        shared, shared_port = await start_server(
            work, "shared", "--cache-memory-mb", "0", "--cache-redis", f"redis://127.0.0.1:{redis_port}/0"
        )
        memory, memory_port = await start_server(work, "memory")
        processes += [disk, shared, memory]

        results: dict[str, list[tuple[float, float]]] = {k: [] for k in ("direct", "front", "disk", "shared", "memory")}
        for text in texts:  # warm-up and priming: each server has rendered each text once
            for port in (back_port, front_port, disk_port, shared_port, memory_port):
                await measure(port, text)
        await asyncio.sleep(1.0)  # cache writes run in the background
        for _ in range(rounds):
            for text in texts:
                # Alternate, so load that comes and goes hits both sides of a comparison alike.
                results["direct"].append(await measure(back_port, text))
                results["front"].append(await measure(front_port, text))
                results["disk"].append(await measure(disk_port, text))
                results["shared"].append(await measure(shared_port, text))
                results["memory"].append(await measure(memory_port, text))
        front_log = (work / "front.log").read_text()
        shared_log = (work / "shared.log").read_text()
        assert "Spoken by remote" in front_log and "Spoken by piper" not in front_log, "the front did not use the back"
        assert "Shared cache on" in shared_log and "failed" not in shared_log, "the shared cache was not used"
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)

    rows = {
        "direct": "back server, asked directly (renders)",
        "front": "front with `--remote`, through the back (renders on the back)",
        "disk": "disk cache hit (`--cache-memory-mb 0`)",
        "shared": "shared cache hit on redis-server (`--cache-memory-mb 0 --cache-redis`)",
        "memory": "memory cache hit (defaults)",
    }
    table = ["| path | TTFA median | TTFA p95 | total median |", "|---|---|---|---|"]
    for key, label in rows.items():
        median, p95, total = summary(results[key])
        table.append(f"| {label} | {median:.1f} ms | {p95:.1f} ms | {total:.1f} ms |")
    hop = summary(results["front"])[0] - summary(results["direct"])[0]
    return "\n".join(table) + f"\n\nRemote hop, TTFA median difference (front − direct): **{hop:+.1f} ms**.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    add_texts_argument(parser, ", ".join(TEXT_FILES))
    args = parser.parse_args()
    texts = text_lines(args.texts, TEXT_FILES)
    if shutil.which("redis-server") is None:
        sys.exit("remote_cache_bench: redis-server is missing (Debian package redis-server)")
    started = time.monotonic()
    machine = machine_description()
    with tempfile.TemporaryDirectory() as tmp, LoadMonitor() as load:
        table = asyncio.run(run(texts, args.rounds, Path(tmp)))
    count = len(texts)
    section = f"""## Remote hop and cache levels (loopback, bundled voice)

Run {timestamp()}, {(time.monotonic() - started) / 60:.1f} min. Machine: {machine}.
{load.summary()}.

{count} English texts (`shared/texts/{{{','.join(TEXT_FILES)}}}`) × {args.rounds} rounds, one request at a
time, after one priming pass. The back and the front run on the same machine: the hop is the
protocol's overhead on loopback, not a LAN's, and no GPU was available, so nothing here says how
fast a GPU back would be.

{table}
### Command

`{command_line()}`
"""
    write_section(SECTION, section)
    print(section)


if __name__ == "__main__":
    main()
