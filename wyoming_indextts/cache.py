"""Two-level audio cache: an LRU in memory (L1) over a persistent, size-bounded store on disk (L2).

Entries are the PCM of one sentence in one output format, keyed by everything that changes
that audio (see `cache_key`). L2 files are content-addressed by the key, written atomically
(temporary file + rename) and carry a checksum of their payload and the hash of their key, so
a torn or corrupted file, or another entry's file under this entry's name, is detected,
deleted and regenerated, never served. Several server processes may share one
folder: readers never see partial files, and eviction holds an advisory lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cachetools import LRUCache

if TYPE_CHECKING:
    from .shared_cache import RedisCache

_LOGGER = logging.getLogger(__name__)

_MAGIC = b"WIXC"
_VERSION = 2
# magic, format version, payload length, sha256 of the key, sha256 of the payload
_HEADER = struct.Struct("<4sIQ32s32s")
_SUFFIX = ".pcm"
_TMP_PREFIX = ".tmp-"
_STALE_TMP_SECONDS = 3600
# Evict down to this share of the budget, so a full cache doesn't rescan on every write.
_EVICT_TO = 0.9


def cache_key(
    *, engine: str, voice: str, fingerprint: str, rate: int, width: int, channels: int, text: str
) -> str:
    """Hash of everything that changes the audio of one sentence."""
    parts = {
        "engine": engine,
        "voice": voice,
        "fingerprint": fingerprint,
        "format": [rate, width, channels],
        "text": text,
    }
    encoded = json.dumps(parts, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def _key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass
class CacheStats:
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    corrupt_dropped: int = 0
    disk_evictions: int = 0


class DiskCache:
    """L2: one file per entry under `root/ab/<key>.pcm`, bounded in bytes with LRU eviction.

    Recency is the file's mtime, touched on every hit, so it survives restarts and is shared
    between processes without a separate index that could disagree with the files.
    """

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.root / ".evict.lock"
        self._lock = threading.Lock()
        self._remove_stale_temporaries()
        self._approx_bytes = self._scan_total()
        self._pinned: frozenset[str] = frozenset()
        self.stats = CacheStats()

    def pin(self, keys: list[str]) -> None:
        """Entries eviction must keep (pre-rendered announcements), replacing the previous set."""
        self._pinned = frozenset(keys)

    def contains(self, key: str) -> bool:
        return self.path_for(key).exists()

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}{_SUFFIX}"

    def get(self, key: str) -> bytes | None:
        path = self.path_for(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            _LOGGER.warning("Cannot read cache entry %s: %s", path, err)
            return None
        payload, problem = self._verified_payload(key, data)
        if payload is None:
            _LOGGER.warning("Dropping cache entry %s (%s); it will be regenerated", path, problem)
            self.stats.corrupt_dropped += 1
            self._unlink(path)
            return None
        try:
            os.utime(path)
        except OSError:
            pass  # evicted by another process a moment ago; the payload we read is still good
        return payload

    def put(self, key: str, payload: bytes) -> None:
        if len(payload) + _HEADER.size > self.max_bytes:
            return
        path = self.path_for(key)
        header = _HEADER.pack(_MAGIC, _VERSION, len(payload), _key_digest(key), hashlib.sha256(payload).digest())
        try:
            path.parent.mkdir(exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as tmp:
                    tmp.write(header)
                    tmp.write(payload)
                    tmp.flush()
                    os.fsync(tmp.fileno())
                os.replace(tmp_name, path)
            except BaseException:
                self._unlink(Path(tmp_name))
                raise
        except OSError as err:
            # A full or read-only disk must not fail the request: the audio is already in hand.
            _LOGGER.warning("Cannot write cache entry %s: %s", path, err)
            return
        with self._lock:
            self._approx_bytes += len(header) + len(payload)
            over_budget = self._approx_bytes > self.max_bytes
        if over_budget:
            self.evict()

    def evict(self) -> None:
        """Delete least recently used entries until the folder is under its budget."""
        with self._lock, open(self._lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            entries = []
            pinned = self._pinned
            for path in self.root.glob(f"*/*{_SUFFIX}"):
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                entries.append((stat.st_mtime, stat.st_size, path))
            total = sum(size for _, size, _ in entries)
            target = int(self.max_bytes * _EVICT_TO)
            for _, size, path in sorted(entries):
                if path.stem in pinned:
                    continue
                if total <= target:
                    break
                self._unlink(path)
                total -= size
                self.stats.disk_evictions += 1
            self._approx_bytes = total

    def total_bytes(self) -> int:
        return self._scan_total()

    def _scan_total(self) -> int:
        total = 0
        for path in self.root.glob(f"*/*{_SUFFIX}"):
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total

    def _remove_stale_temporaries(self) -> None:
        """Temporary files left by a crash; recent ones may belong to a live process."""
        cutoff = time.time() - _STALE_TMP_SECONDS
        for path in self.root.glob(f"*/{_TMP_PREFIX}*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue

    @staticmethod
    def _verified_payload(key: str, data: bytes) -> tuple[bytes | None, str]:
        """The payload if the file is a whole, intact entry for `key`; else None and why not."""
        if len(data) < _HEADER.size or data[:4] != _MAGIC:
            return None, "not a cache entry, or torn"
        magic, version, length, key_digest, digest = _HEADER.unpack_from(data)
        if version != _VERSION:
            return None, f"format {version} of an older version"
        payload = data[_HEADER.size :]
        if length != len(payload) or hashlib.sha256(payload).digest() != digest:
            return None, "corrupted or truncated"
        if key_digest != _key_digest(key):
            return None, "it holds another sentence's audio"
        return payload, ""

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


class AudioCache:
    """L1 in memory in front of an optional L2 on disk (or shared, `shared_cache`). Thread-safe."""

    def __init__(self, memory_bytes: int, disk: DiskCache | RedisCache | None) -> None:
        self._memory: LRUCache[str, bytes] = LRUCache(maxsize=max(memory_bytes, 1), getsizeof=len)
        self._memory_lock = threading.Lock()
        self.disk = disk
        self.stats = disk.stats if disk is not None else CacheStats()

    def get(self, key: str) -> bytes | None:
        payload = self.memory_get(key)
        return payload if payload is not None else self.disk_get(key)

    def memory_get(self, key: str) -> bytes | None:
        """L1 only: cheap enough to call on the event loop."""
        with self._memory_lock:
            payload = self._memory.get(key)
        if payload is not None:
            self.stats.memory_hits += 1
        return payload

    def disk_get(self, key: str) -> bytes | None:
        """L2, promoting a hit into L1. Reads a file: keep it off the event loop."""
        if self.disk is not None:
            payload = self.disk.get(key)
            if payload is not None:
                self.stats.disk_hits += 1
                self.remember(key, payload)
                return payload
        self.stats.misses += 1
        return None

    def put(self, key: str, payload: bytes) -> None:
        if not payload:
            return
        self.remember(key, payload)
        if self.disk is not None:
            self.disk.put(key, payload)

    def pin(self, keys: list[str]) -> None:
        """Keep these entries in L2 whatever its eviction would choose (pre-rendered texts)."""
        if self.disk is not None:
            self.disk.pin(keys)

    def memory_bytes(self) -> int:
        with self._memory_lock:
            return int(self._memory.currsize)

    def __contains__(self, key: str) -> bool:
        with self._memory_lock:
            if key in self._memory:
                return True
        return self.disk is not None and self.disk.contains(key)

    def remember(self, key: str, payload: bytes) -> None:
        """L1 only: the caller writes L2 itself when it wants that off its own path."""
        with self._memory_lock:
            if len(payload) <= self._memory.maxsize:
                self._memory[key] = payload
