"""How often a voice was heard: every sentence and every reply, by the voice asked for and
what spoke it (the voice itself from the cache, the voice rendered live, or a fallback engine).

Kept in the ledger (ledger.py): all-time totals for /metrics (they never go down, as a
Prometheus counter must not) and hourly buckets for the page's "last 24 h / 7 d" shares,
pruned after `KEEP_HOURS`. A reply counts by what spoke its first sentence: that is the voice
the listener heard first, and a reply switches voice at most once (synthesizer.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from .ledger import Ledger

Route = Literal["cache", "live", "fallback"]
"""cache: the voice asked for, from the cache; live: the voice asked for, rendered now;
fallback: another voice spoke in its place."""

KEEP_HOURS = 8 * 24
"""Hourly buckets kept: the 7-day window and a day of slack."""

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS heard_total (voice TEXT, route TEXT, engine TEXT, sentences INTEGER, replies INTEGER,"
    " PRIMARY KEY (voice, route, engine))",
    "CREATE TABLE IF NOT EXISTS heard_hourly (hour INTEGER, voice TEXT, route TEXT, engine TEXT, sentences INTEGER,"
    " replies INTEGER, PRIMARY KEY (hour, voice, route, engine))",
)


@dataclass(frozen=True)
class Spoken:
    """Who spoke one sentence of a reply."""

    asked: str
    """The voice asked for."""
    voice: str
    """The voice that spoke."""
    engine: str
    route: Route
    queued: bool = False
    """True when the sentence went into the render queue, for the voice asked for."""

    @property
    def in_voice_asked(self) -> bool:
        return self.route != "fallback"


@dataclass(frozen=True)
class HeardTotal:
    voice: str
    route: Route
    engine: str
    sentences: int
    replies: int


@dataclass(frozen=True)
class Share:
    """Sentences in a window: how many in the voice asked for, of how many."""

    in_voice: int
    total: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.in_voice / self.total, 1) if self.total else None


class HeardCounts:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        for statement in SCHEMA:
            ledger.execute(statement)

    def record(self, spoken: Spoken, reply: bool, now: float | None = None) -> None:
        """Count one sentence (and one reply when it opened one): both tables in one transaction."""
        hour = int((time.time() if now is None else now) // 3600)
        replies = int(reply)
        labels = (spoken.asked, spoken.route, spoken.engine)
        self.ledger.transaction(
            [
                (
                    "INSERT INTO heard_total VALUES (?, ?, ?, 1, ?) ON CONFLICT DO UPDATE"
                    " SET sentences = sentences + 1, replies = replies + excluded.replies",
                    (*labels, replies),
                ),
                (
                    "INSERT INTO heard_hourly VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT DO UPDATE"
                    " SET sentences = sentences + 1, replies = replies + excluded.replies",
                    (hour, *labels, replies),
                ),
                ("DELETE FROM heard_hourly WHERE hour < ?", (hour - KEEP_HOURS,)),
            ]
        )

    def totals(self) -> list[HeardTotal]:
        rows = self.ledger.execute("SELECT voice, route, engine, sentences, replies FROM heard_total ORDER BY voice, route, engine")
        return [HeardTotal(*row) for row in rows]

    def shares(self, hours: int, now: float | None = None) -> dict[str, Share]:
        """Per voice asked for: sentences heard in it over the last `hours` (this hour included)."""
        since = int((time.time() if now is None else now) // 3600) - hours + 1
        rows = self.ledger.execute(
            "SELECT voice, SUM(CASE WHEN route != 'fallback' THEN sentences ELSE 0 END), SUM(sentences)"
            " FROM heard_hourly WHERE hour >= ? GROUP BY voice ORDER BY voice",
            (since,),
        )
        return {voice: Share(int(in_voice), int(total)) for voice, in_voice, total in rows}
