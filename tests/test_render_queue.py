"""The render queue that never forgets, on a real SQLite file: deduplicated and counted, most
asked first, bounded; a torn write loses only the transaction it tore; and a real server
process killed with SIGKILL in the middle of the queue finds every entry again on restart and
renders it. The cloned voice there is another server (a real one, in this process, behind
`--remote`) whose engine hangs until the test lets it speak, so "in the middle" is a state the
test holds, not a race it hopes to win."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from wyoming_indextts.heard import HeardCounts, Spoken
from wyoming_indextts.ledger import LEDGER_FILE, Ledger, LedgerError
from wyoming_indextts.render_queue import MAX_ATTEMPTS, RenderQueue
from wyoming_indextts.synthesizer import ChainSettings

from .conftest import CountingEngine, running_server
from .test_cli import SERVER, free_port, wait_for_port

CLONE = "clone-en"
JOE = "en_US-joe-medium"
SENTENCES = ["Timer finished.", "The dishwasher is done.", "Motion detected in the backyard."]


def test_queue_deduplicates_counts_and_ranks_most_asked_first(tmp_path):
    queue = RenderQueue(Ledger(tmp_path / LEDGER_FILE), capacity=10)
    queue.add("k1", CLONE, "Lights off.", now=1.0)
    queue.add("k2", CLONE, "Timer cancelled.", now=2.0)
    queue.add("k2", CLONE, "Timer cancelled.", now=3.0)
    queue.add("k3", "grandma", "Good night.", now=4.0)
    for _ in range(3):
        queue.add("k3", "grandma", "Good night.", now=5.0)
    assert queue.size() == 3
    assert [(e.text, e.asked) for e in queue.entries()] == [("Good night.", 4), ("Timer cancelled.", 2), ("Lights off.", 1)]
    # A batch is of one voice: the most asked entry's.
    assert [e.key for e in queue.take(4)] == ["k3"]
    queue.done("k3")
    assert [e.key for e in queue.take(4)] == ["k2", "k1"]


def test_queue_is_bounded_and_drops_the_least_asked_oldest(tmp_path):
    queue = RenderQueue(Ledger(tmp_path / LEDGER_FILE), capacity=3)
    queue.add("old", CLONE, "Old.", now=1.0)
    queue.add("popular", CLONE, "Popular.", now=2.0)
    queue.add("popular", CLONE, "Popular.", now=2.5)
    queue.add("newer", CLONE, "Newer.", now=3.0)
    queue.add("newest", CLONE, "Newest.", now=4.0)
    assert sorted(e.key for e in queue.entries()) == ["newer", "newest", "popular"]
    assert queue.progress.dropped == 1


def test_a_sentence_that_keeps_failing_is_dropped_after_its_attempts(tmp_path):
    queue = RenderQueue(Ledger(tmp_path / LEDGER_FILE))
    queue.add("bad", CLONE, "٣")
    for attempt in range(MAX_ATTEMPTS):
        entry = queue.take(1)[0]
        assert entry.attempts == attempt
        assert queue.failed(entry, "Nothing to speak") is (attempt == MAX_ATTEMPTS - 1)
    assert queue.size() == 0


def test_a_torn_write_loses_only_the_transaction_it_tore(tmp_path):
    """A crash mid-commit leaves a WAL whose last frames are cut short (or garbage): the
    entries committed before are all there, the file checks clean, and the queue works on."""
    live = tmp_path / "live"
    ledger = Ledger(live / LEDGER_FILE)
    queue = RenderQueue(ledger)
    for index in range(5):
        queue.add(f"k{index}", CLONE, f"Sentence {index}.")
    wal = live / (LEDGER_FILE + "-wal")
    committed = wal.stat().st_size
    queue.add("torn", CLONE, "Half written.")
    grown = wal.stat().st_size
    assert grown > committed  # the last transaction's frames are in the WAL, not yet checkpointed
    for case, damage in {
        "cut": lambda data: data[: committed + (grown - committed) // 2],
        "garbage": lambda data: data[: grown - 100] + bytes(range(100)),
    }.items():
        crashed = tmp_path / case
        crashed.mkdir()
        shutil.copy(live / LEDGER_FILE, crashed / LEDGER_FILE)  # a copy of the files as a crash left them
        (crashed / (LEDGER_FILE + "-wal")).write_bytes(damage(wal.read_bytes()))
        reopened = RenderQueue(Ledger(crashed / LEDGER_FILE))
        assert sorted(e.key for e in reopened.entries(10)) == [f"k{index}" for index in range(5)], case
        assert reopened.ledger.execute("PRAGMA integrity_check") == [("ok",)]
        reopened.add("after", CLONE, "Written after the crash.")
        assert reopened.size() == 6
    ledger.close()


def test_a_file_that_is_not_a_ledger_gets_a_clear_error(tmp_path):
    path = tmp_path / LEDGER_FILE
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match=f"{path}.*move it away"):
        RenderQueue(Ledger(path))


def test_heard_counts_by_window_and_all_time(tmp_path):
    heard = HeardCounts(Ledger(tmp_path / LEDGER_FILE))
    now = 1_000_000 * 3600.0
    two_days_ago = now - 48 * 3600
    heard.record(Spoken(CLONE, JOE, "piper", "fallback", queued=True), reply=True, now=two_days_ago)
    heard.record(Spoken(CLONE, CLONE, "indextts", "cache"), reply=True, now=now)
    heard.record(Spoken(CLONE, CLONE, "indextts", "live"), reply=False, now=now)
    heard.record(Spoken(CLONE, JOE, "piper", "fallback", queued=True), reply=False, now=now)
    day, week = heard.shares(24, now)[CLONE], heard.shares(7 * 24, now)[CLONE]
    assert (day.in_voice, day.total, day.percent) == (2, 3, 66.7)
    assert (week.in_voice, week.total, week.percent) == (2, 4, 50.0)
    totals = {(t.route, t.engine): (t.sentences, t.replies) for t in heard.totals()}
    assert totals == {("cache", "indextts"): (1, 1), ("live", "indextts"): (1, 0), ("fallback", "piper"): (2, 1)}
    # Buckets older than the week (and its day of slack) are pruned; the totals stay.
    heard.record(Spoken(CLONE, CLONE, "indextts", "cache"), reply=True, now=now + 9 * 24 * 3600)
    assert heard.ledger.execute("SELECT count(*) FROM heard_hourly") == [(1,)]
    assert sum(t.sentences for t in heard.totals()) == 5


class HeldClone(CountingEngine):
    """The cloned voice, silent until `release` is set (however long that takes)."""

    def synthesize(self, text, voice, *, opening=True):
        self.release.wait()
        yield from super().synthesize(text, voice, opening=opening)


class Front:
    """The server under test as its own process, its cloned voice behind `--remote`."""

    def __init__(self, tmp_path: Path, back_port: int) -> None:
        self.data_dir = tmp_path / "front"
        self.log = tmp_path / "front.log"
        self.back_port = back_port
        self.process: subprocess.Popen | None = None
        self.http_port = 0

    async def start(self) -> None:
        port, self.http_port = free_port(), free_port()
        args = [
            "--uri", f"tcp://127.0.0.1:{port}", "--http-uri", f"http://127.0.0.1:{self.http_port}",
            "--data-dir", str(self.data_dir), "--remote", f"tcp://127.0.0.1:{self.back_port}", "--voice", CLONE,
            "--deadline", "1", "--late-renders", "0", "--render-batch", "2", "--threads", "1",
        ]  # fmt: skip
        with open(self.log, "a") as log:
            self.process = subprocess.Popen([*SERVER, *args], stderr=log)
        await wait_for_port(self.http_port, self.process, timeout=120)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    async def health(self) -> dict:
        async with httpx.AsyncClient() as client:
            return (await client.get(self.url("/health"), timeout=30)).json()

    async def wait_for(self, check, timeout: float = 180) -> dict:
        async with asyncio.timeout(timeout):
            while not check(health := await self.health()):
                await asyncio.sleep(0.3)
        return health

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)


async def speak(front: Front, text: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(front.url("/tts"), json={"text": text, "voice": CLONE}, timeout=120)


async def test_kill_9_mid_queue_loses_nothing_and_the_queue_renders_after_the_restart(piper, tmp_path):
    clone = HeldClone(piper, name="indextts", voice_name=CLONE, languages=("en",))
    back_settings = ChainSettings(sentence_cap=300)
    async with running_server({"indextts": clone}, CLONE, chain=back_settings, fallback_voices={}) as back:
        front = Front(tmp_path, back.port)
        try:
            await front.start()
            reply = await speak(front, " ".join(SENTENCES))
            assert reply.status_code == 200
            # The page and X-Voice name the voice that spoke, and say the sentence is queued.
            assert reply.headers["X-Voice"] == JOE and reply.headers["X-Voice-Asked"] == CLONE
            assert reply.headers["X-Voice-Route"] == "fallback" and reply.headers["X-Voice-Queued"] == "1"
            # Mid-queue: all three queued, the renderer stuck on the first of them in the held clone.
            health = await front.wait_for(lambda h: h["render_queue"]["entries"] == 3 and h["render_queue"]["rendering"] >= 1)
            assert health["heard"]["voices"][CLONE]["last_24h"] == {"in_voice": 0, "sentences": 3, "percent": 0.0}
            front.kill()

            database = sqlite3.connect(front.data_dir / LEDGER_FILE)
            assert database.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            queued = database.execute("SELECT voice, text, asked FROM render_queue").fetchall()
            assert sorted(queued) == sorted((CLONE, text, 1) for text in SENTENCES)
            database.close()

            clone.release.set()  # the clone speaks again
            await front.start()
            health = await front.wait_for(lambda h: h["render_queue"]["entries"] == 0)
            assert health["render_queue"]["rendered"] == 3
            for text in SENTENCES:
                again = await speak(front, text)
                assert (again.headers["X-Voice"], again.headers["X-Voice-Route"]) == (CLONE, "cache"), text
                assert "X-Voice-Queued" not in again.headers
            health = await front.health()
            # The counts were kept across the kill: 3 by the fallback, then 3 in the voice.
            assert health["heard"]["voices"][CLONE]["last_24h"] == {"in_voice": 3, "sentences": 6, "percent": 50.0}
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(front.url("/metrics"))).text
            assert f'wyoming_indextts_heard_sentences_total{{engine="piper",route="fallback",voice="{CLONE}"}} 3.0' in metrics
            assert f'wyoming_indextts_heard_sentences_total{{engine="remote",route="cache",voice="{CLONE}"}} 3.0' in metrics
            assert f'wyoming_indextts_heard_replies_total{{engine="piper",route="fallback",voice="{CLONE}"}} 1.0' in metrics
            assert "wyoming_indextts_render_queue_entries 0.0" in metrics
        finally:
            front.kill()
            clone.release.set()
