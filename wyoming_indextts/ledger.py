"""The server's small persistent memory: one SQLite file in the data folder (`ledger.sqlite3`)
holding the render queue (render_queue.py) and the counts of which voice was heard (heard.py).

Why SQLite in WAL mode rather than a journal of our own: every change is one transaction,
atomic and checksummed in the write-ahead log, so a process killed mid-write (kill -9, power
cut) leaves either the change or nothing, never a half entry; a torn last WAL frame fails its
checksum and is ignored at the next open. It is in the standard library, an upsert deduplicates
and counts in one statement, and "most asked first" is an index scan. `synchronous=NORMAL`:
in WAL mode a commit survives a killed process (the OS holds the write); only a power cut can
lose the last commits, never corrupt the file. Each write is a few rows, well under a
millisecond, but callers still make them off the event loop (a slow SD card may stall).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

LEDGER_FILE = "ledger.sqlite3"


class LedgerError(Exception):
    """The ledger file cannot be opened or is not a ledger; the message names the file."""


class Ledger:
    """One connection shared by the queue and the counts, serialised by a lock (SQLite
    connections are not for concurrent use, and calls come from worker threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.connection.execute("PRAGMA busy_timeout=5000")
            check = self.connection.execute("PRAGMA quick_check").fetchone()[0]
        except (OSError, sqlite3.Error) as err:
            raise LedgerError(f"cannot use {path}: {err}; move it away and the server starts a new one") from err
        if check != "ok":
            raise LedgerError(f"{path} is damaged ({check}); move it away and the server starts a new one")

    def execute(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self.lock:
            return self.connection.execute(sql, parameters).fetchall()

    def transaction(self, statements: list[tuple[str, tuple]]) -> list[int]:
        """Run the statements as one transaction (all of them land, or none); returns the
        number of rows each changed."""
        with self.lock:
            cursor = self.connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            changed = []
            try:
                for sql, parameters in statements:
                    cursor.execute(sql, parameters)
                    changed.append(cursor.rowcount)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
            return changed

    def close(self) -> None:
        with self.lock:
            self.connection.close()
