"""The worker of the two-process cache test, in a module of its own: a spawned process
imports the module that defines its target, and the test module's imports (the engines,
through conftest) take seconds that this one does not."""

from __future__ import annotations

import random
from pathlib import Path

from wyoming_indextts.cache import DiskCache, cache_key


def key(n: int) -> str:
    return cache_key(engine="e", voice="v", fingerprint="f", rate=22050, width=2, channels=1, text=f"sentence {n}")


def hammer(folder: str, seed: int, rounds: int, queue) -> None:
    """One of two processes sharing a cache folder: write, read back and evict at random."""
    rng = random.Random(seed)
    disk = DiskCache(Path(folder), max_bytes=200_000)
    bad = 0
    for _ in range(rounds):
        n = rng.randrange(40)
        payload = bytes([n % 251]) * (5_000 + n * 100)
        if rng.random() < 0.5:
            disk.put(key(n), payload)
        else:
            got = disk.get(key(n))
            if got is not None and got != payload:
                bad += 1
    queue.put((bad, disk.stats.corrupt_dropped))
