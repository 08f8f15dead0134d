"""Pre-rendered announcements: time to first audio of 20 announcements after `--prerender`,
beside the same announcements rendered cold (a second server with `--no-cache`), both server
processes on loopback, the bundled voice (the cache path is the same whatever the engine).

    .venv/bin/python benchmarks/prerender_bench.py [--texts DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import add_texts_argument, free_port, ms, percentile, wait_ready  # noqa: E402
from benchmarks._report import LoadMonitor, command_line, machine_description, timestamp, write_section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def announcements(texts: Path) -> list[str]:
    """20 announcements: the shared English ones, then variants with a room or a time."""
    base = [line.strip() for line in (texts / "announcements_en.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    rooms = ["kitchen", "hall", "garden", "garage"]
    extra = (
        [f"The light in the {room} was left on." for room in rooms]
        + [f"The window in the {room} is open." for room in rooms]
        + [f"Reminder: the bins go out at {hour} o'clock." for hour in (6, 7, 8, 9)]
    )
    return (base + extra)[:20]


async def first_audio(port: int, text: str) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    writer.write(json.dumps({"type": "synthesize", "data": {"text": text}}).encode() + b"\n")
    await writer.drain()
    first = None
    while True:
        header = json.loads(await reader.readline())
        length = (header.get("data_length") or 0) + (header.get("payload_length") or 0)
        if length:
            await reader.readexactly(length)
        if header["type"] == "audio-chunk" and first is None:
            first = time.perf_counter() - started
        if header["type"] == "audio-stop":
            break
    writer.close()
    assert first is not None, f"no audio for {text!r}"
    return first


async def measure(extra: list[str], texts: list[str], rounds: int, wait_for_log: str | None) -> list[float]:
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="prerender-"))
    log = data / "server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "wyoming_indextts", "--uri", f"tcp://127.0.0.1:{port}", "--data-dir", str(data), *extra],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),
    )
    try:
        await wait_ready(port)
        if wait_for_log:
            while wait_for_log not in log.read_text():
                await asyncio.sleep(0.2)
        return [await first_audio(port, text) for _ in range(rounds) for text in texts]
    finally:
        server.terminate()
        server.wait(30)


async def run(args: argparse.Namespace) -> str:
    texts = announcements(args.texts)
    listed = Path(tempfile.mkdtemp()) / "announcements.txt"
    listed.write_text("\n".join(texts), encoding="utf-8")
    cold = await measure(["--no-cache"], texts, args.rounds, None)
    warm = await measure(["--prerender", str(listed)], texts, args.rounds, "Pre-rendering done")
    row = lambda name, values: (  # noqa: E731
        f"| {name} | {len(values)} | {ms(percentile(values, 0.5), 1)} ms | {ms(percentile(values, 0.95), 1)} ms | {ms(max(values), 1)} ms |"
    )
    held = "yes" if percentile(warm, 0.95) <= 0.005 else "**no**"
    return "\n".join(
        [
            "| server | requests | first audio p50 | p95 | max |",
            "|---|---|---|---|---|",
            row("`--prerender` (after pre-rendering)", warm),
            row("reference: `--no-cache` (rendered cold)", cold),
            "",
            f"Target: pre-rendered first audio p95 ≤ 5 ms: {held}.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_texts_argument(parser, "announcements_en.txt")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with LoadMonitor() as load:
        body = asyncio.run(run(args))
    write_section(
        "prerender_bench",
        f"""## Pre-rendered announcements: first audio from the cache

Run {timestamp()}: `{command_line()}`. Machine: {machine_description()}.  
{load.summary()}.

20 announcements (the 8 of `announcements_en.txt` and 12 variants), each requested {args.rounds}
times over Wyoming, one at a time, by a server started with `--prerender FILE` once its log said
"Pre-rendering done", beside a `--no-cache` server rendering them cold. Bundled voice: the
answer from the cache does not depend on which engine filled it.

{body}
""",
    )
    print(body)


if __name__ == "__main__":
    main()
