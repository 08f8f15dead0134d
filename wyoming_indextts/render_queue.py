"""The render queue: every sentence a fallback spoke in place of a cloned voice, remembered on
disk until the cloned voice has rendered it into the cache.

Entries live in the ledger (ledger.py: SQLite, WAL, so a restart or kill -9 loses or tears
none), one per cache key (the voice, its clip and the sentence), with the voice's name and the
text to rebuild that key, and how often the sentence was asked for. Bounded: past `capacity`
the least asked (then the oldest) entry makes room. `QueueRenderer` renders them while no live
render works, most asked first, several sentences of one voice per batch
(`Synthesizer.render_many_for_cache`: batched decoding where the engine has it). A sentence
that fails `MAX_ATTEMPTS` times is dropped with a log line (text the voice cannot speak would
otherwise block the queue forever); after a failure the renderer rests `FAILURE_REST` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .ledger import Ledger

if TYPE_CHECKING:  # the synthesizer imports this module
    from .synthesizer import Synthesizer

_LOGGER = logging.getLogger(__name__)

DEFAULT_CAPACITY = 2000
"""Entries kept: a household's misses of a few weeks; a row is ~100 bytes."""

DEFAULT_BATCH = 4
"""Sentences per batch: at the published size a batch of 4 decodes 3.4x the GPT codes per CPU
second of one sentence (benchmarks/RESULTS.md) and holds four KV caches (~0.4 GB more)."""

MAX_ATTEMPTS = 3
FAILURE_REST = 30.0
IDLE_POLL = 30.0
"""Seconds between looks at an empty queue (an add wakes the renderer at once)."""

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS render_queue (key TEXT PRIMARY KEY, voice TEXT NOT NULL, text TEXT NOT NULL,"
    " asked INTEGER NOT NULL, first_asked REAL NOT NULL, last_asked REAL NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, error TEXT)",
    "CREATE INDEX IF NOT EXISTS render_queue_rank ON render_queue (asked DESC, first_asked)",
)


@dataclass(frozen=True)
class QueueEntry:
    key: str
    voice: str
    text: str
    asked: int
    attempts: int = 0


@dataclass
class QueueProgress:
    """Since this process started."""

    rendered: int = 0
    failed: int = 0
    dropped: int = 0
    """Dropped for room, or after MAX_ATTEMPTS failures, or because their voice is gone."""
    rendering: int = 0
    """Sentences in the batch under way."""


class RenderQueue:
    def __init__(self, ledger: Ledger, capacity: int = DEFAULT_CAPACITY) -> None:
        self.ledger = ledger
        self.capacity = capacity
        self.progress = QueueProgress()
        for statement in SCHEMA:
            ledger.execute(statement)

    def add(self, key: str, voice: str, text: str, now: float | None = None) -> None:
        """Remember a sentence for `voice` (asked once more if it is queued already)."""
        now = time.time() if now is None else now
        _, evicted = self.ledger.transaction(
            [
                (
                    "INSERT INTO render_queue (key, voice, text, asked, first_asked, last_asked) VALUES (?, ?, ?, 1, ?, ?)"
                    " ON CONFLICT DO UPDATE SET asked = asked + 1, last_asked = excluded.last_asked",
                    (key, voice, text, now, now),
                ),
                # Room for the newest: the least asked, then the oldest, go first.
                (
                    "DELETE FROM render_queue WHERE key IN (SELECT key FROM render_queue WHERE key != ?"
                    " ORDER BY asked, last_asked LIMIT max(0, (SELECT count(*) FROM render_queue) - ?))",
                    (key, self.capacity),
                ),
            ]
        )
        if evicted:
            self.progress.dropped += evicted
            _LOGGER.warning("Render queue full (%d): %d least asked sentence(s) dropped", self.capacity, evicted)

    def take(self, limit: int) -> list[QueueEntry]:
        """The most asked entry and up to `limit - 1` more of the same voice, most asked first;
        they stay queued until `done` (a crash mid-render loses nothing)."""
        rows = self.ledger.execute(
            "SELECT key, voice, text, asked, attempts FROM render_queue WHERE voice ="
            " (SELECT voice FROM render_queue ORDER BY asked DESC, first_asked LIMIT 1)"
            " ORDER BY asked DESC, first_asked LIMIT ?",
            (limit,),
        )
        return [QueueEntry(*row) for row in rows]

    def done(self, key: str) -> None:
        self.ledger.execute("DELETE FROM render_queue WHERE key = ?", (key,))

    def failed(self, entry: QueueEntry, error: str) -> bool:
        """Count a failed attempt; True when the entry was dropped for good."""
        if entry.attempts + 1 >= MAX_ATTEMPTS:
            self.done(entry.key)
            return True
        self.ledger.execute("UPDATE render_queue SET attempts = attempts + 1, error = ? WHERE key = ?", (error, entry.key))
        return False

    def size(self) -> int:
        return self.ledger.execute("SELECT count(*) FROM render_queue")[0][0]

    def entries(self, limit: int = 10) -> list[QueueEntry]:
        """The next to render, most asked first (for /health and the page)."""
        rows = self.ledger.execute(
            "SELECT key, voice, text, asked, attempts FROM render_queue ORDER BY asked DESC, first_asked LIMIT ?", (limit,)
        )
        return [QueueEntry(*row) for row in rows]


class QueueRenderer:
    """Renders the queue in the background while the server is idle, one batch at a time."""

    def __init__(self, synthesizer: Synthesizer, queue: RenderQueue, batch: int) -> None:
        self.synthesizer = synthesizer
        self.queue = queue
        self.batch = batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="render-queue")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self.synthesizer.queued.clear()  # before looking, so an add meanwhile wakes the next wait
            entries: list[QueueEntry] = []
            try:
                entries = await asyncio.to_thread(self.queue.take, self.batch)
                if entries and await self._render(entries):
                    continue
            except sqlite3.Error as err:
                _LOGGER.error("Cannot read the render queue in %s: %s", self.queue.ledger.path, err)
            if entries:
                await asyncio.sleep(FAILURE_REST)
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.synthesizer.queued.wait(), IDLE_POLL)

    async def _render(self, entries: list[QueueEntry]) -> bool:
        """Render one batch; False when any of it failed."""
        progress = self.queue.progress
        voice = self.synthesizer.catalogue.find(entries[0].voice)
        if voice is None:
            for entry in entries:
                _LOGGER.warning("Dropping queued %r: no voice named %r any more", entry.text, entry.voice)
                await asyncio.to_thread(self.queue.done, entry.key)
            progress.dropped += len(entries)
            return True
        progress.rendering = len(entries)
        try:
            outcomes = await self.synthesizer.render_many_for_cache([entry.text for entry in entries], voice)
        finally:
            progress.rendering = 0
        ok = True
        for entry, outcome in zip(entries, outcomes):
            if outcome in ("cached", "rendered"):
                progress.rendered += outcome == "rendered"
                await asyncio.to_thread(self.queue.done, entry.key)
                _LOGGER.info("Queued sentence %s in %s (asked %d×): %r", outcome, voice.name, entry.asked, entry.text)
                continue
            ok = False
            progress.failed += 1
            if await asyncio.to_thread(self.queue.failed, entry, outcome):
                progress.dropped += 1
                _LOGGER.warning("Dropping queued %r after %d failed renders in %s: %s", entry.text, MAX_ATTEMPTS, voice.name, outcome)
            else:
                _LOGGER.warning("Queued %r failed in %s (tried again later): %s", entry.text, voice.name, outcome)
        return ok
