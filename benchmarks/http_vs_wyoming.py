"""HTTP beside Wyoming: time to first audio and throughput for the same texts, one server.

One `wyoming-indextts` process serves both protocols with the bundled voice. Every text of
`shared/texts/` goes once over each protocol per round; which protocol goes first alternates
per text, so load that changes during the run hits both alike. Two runs:

- **cold**: the server runs with `--no-cache`, every request is rendered;
- **cached**: default cache, after one priming pass over the texts (announcements a house hears
  again), so what is measured is each protocol's own overhead.

Time to first audio: from sending the request to the first audio byte (Wyoming: the first
audio-chunk; HTTP: the first byte after the 44-byte WAV header of `POST /tts`, and the first
byte of OpenAI's `pcm`). Throughput: seconds of audio delivered per second of wall time for a
whole text, mean over requests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_texts_argument, free_port, text_lines  # noqa: E402
from _report import LoadMonitor, command_line, machine_description, timestamp, write_section  # noqa: E402

TEXT_FILES = ("announcements_en.txt", "replies_en.txt", "zh.txt")
RATE = 22050
WAV_HEADER = 44


async def wyoming(port: int, text: str) -> tuple[float, float, float]:
    start = time.perf_counter()
    first = None
    audio = 0
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text).event())
        while True:
            event = await client.read_event()
            assert event is not None
            if event.type == "audio-chunk":
                first = first or time.perf_counter()
                audio += len(event.payload or b"")
            elif event.type == "audio-stop":
                break
    return first - start, time.perf_counter() - start, audio / 2 / RATE


async def http(client: httpx.AsyncClient, path: str, body: dict, skip: int, rate: int) -> tuple[float, float, float]:
    start = time.perf_counter()
    first = None
    received = 0
    async with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200, await response.aread()
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if first is None and received > skip:
                first = time.perf_counter()
    return first - start, time.perf_counter() - start, (received - skip) / 2 / rate


async def measure(port: int, http_port: int, texts: list[str], rounds: int) -> dict[str, list[tuple[float, float, float]]]:
    results: dict[str, list[tuple[float, float, float]]] = {"wyoming": [], "http /tts wav": [], "http openai pcm": []}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=120) as client:
        for round_ in range(rounds):
            for index, text in enumerate(texts):
                jobs = {
                    "wyoming": lambda: wyoming(port, text),
                    "http /tts wav": lambda: http(client, "/tts", {"text": text}, WAV_HEADER, RATE),
                    "http openai pcm": lambda: http(
                        client, "/v1/audio/speech", {"model": "x", "input": text, "response_format": "pcm"}, 0, 24000
                    ),
                }
                order = list(jobs)
                if (index + round_) % 2:
                    order.reverse()
                for name in order:
                    results[name].append(await jobs[name]())
    return results


async def run_server(extra: list[str], texts: list[str], rounds: int, prime: bool) -> dict:
    port, http_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data:
        process = subprocess.Popen(
            [sys.executable, "-m", "wyoming_indextts", "--uri", f"tcp://127.0.0.1:{port}",
             "--http-uri", f"http://127.0.0.1:{http_port}", "--data-dir", data, *extra],
            stderr=subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient(timeout=5) as probe:
                for _ in range(300):
                    try:
                        if (await probe.get(f"http://127.0.0.1:{http_port}/health")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.2)
            if prime:
                await measure(port, http_port, texts, 1)
            return await measure(port, http_port, texts, rounds)
        finally:
            process.terminate()
            process.wait(30)


def table(title: str, results: dict) -> list[str]:
    lines = [f"### {title}", "", "| protocol | requests | TTFA mean ms | TTFA p95 ms | total mean ms | audio s per wall s (mean) |", "|---|---|---|---|---|---|"]
    for name, rows in results.items():
        ttfa = sorted(r[0] * 1000 for r in rows)
        p95 = ttfa[min(len(ttfa) - 1, int(round(0.95 * (len(ttfa) - 1))))]
        speed = statistics.mean(r[2] / r[1] for r in rows)
        lines.append(
            f"| {name} | {len(rows)} | {statistics.mean(ttfa):.1f} | {p95:.1f} | {statistics.mean(r[1] * 1000 for r in rows):.1f} | {speed:.1f} |"
        )
    return lines + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    add_texts_argument(parser, ", ".join(TEXT_FILES))
    args = parser.parse_args()
    texts = text_lines(args.texts, TEXT_FILES)
    started = time.monotonic()
    when = timestamp()
    with LoadMonitor() as load:
        cold = asyncio.run(run_server(["--no-cache"], texts, args.rounds, prime=False))
        cached = asyncio.run(run_server([], texts, args.rounds, prime=True))
    lines = [
        "## HTTP beside Wyoming (same server, same texts, bundled voice)",
        "",
        f"Run {when}, {(time.monotonic() - started) / 60:.1f} min. Machine: {machine_description()}.  ",
        load.summary() + ".",
        "",
        f"{len(texts)} lines of `shared/texts/` ({', '.join(TEXT_FILES)}), {args.rounds} rounds, each text over every "
        "protocol in turn (order alternating). TTFA: request sent → first audio byte. Reference: Wyoming on the same "
        "server; the HTTP rows should sit within a few milliseconds of it.",
        "",
        *table("cold (`--no-cache`: every request rendered)", cold),
        *table("cached (after one priming pass)", cached),
        "```",
        command_line(),
        "```",
    ]
    write_section("http_vs_wyoming", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
