"""Is the server answering? `python -m wyoming_indextts.healthcheck [--uri URI]` sends a Wyoming
`describe` and exits 0 when an `info` with a TTS program and at least one voice comes back, 1
otherwise (one line on stderr saying why). A bound port is not enough: the server opens it only
after its voices are loaded, but a hung event loop still accepts connections.

Used by the container's HEALTHCHECK and by the add-on's discovery step, which waits for it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from wyoming.client import AsyncClient
from wyoming.info import Describe, Info

DEFAULT_URI = "tcp://127.0.0.1:10200"


async def _describe(uri: str) -> Info:
    async with AsyncClient.from_uri(uri) as client:
        await client.write_event(Describe().event())
        while True:
            event = await client.read_event()
            if event is None:
                raise ValueError("the server closed the connection without answering describe")
            if Info.is_type(event.type):
                return Info.from_event(event)


async def describe(uri: str, timeout: float) -> Info:
    """The server's `info`; TimeoutError, OSError or ValueError when there is none to be had."""
    return await asyncio.wait_for(_describe(uri), timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wyoming-indextts-healthcheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", default=DEFAULT_URI, help=f"server to ask (default: {DEFAULT_URI})")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer (default: 5)")
    args = parser.parse_args(argv)
    try:
        info = asyncio.run(describe(args.uri, args.timeout))
    except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
        print(f"unhealthy: no answer to describe from {args.uri} within {args.timeout:g} s", file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:
        print(f"unhealthy: {args.uri}: {err}", file=sys.stderr)
        return 1
    voices = [voice.name for program in info.tts for voice in program.voices]
    if not voices:
        print(f"unhealthy: {args.uri} answers describe but offers no TTS voice", file=sys.stderr)
        return 1
    print(f"healthy: {len(voices)} voices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
