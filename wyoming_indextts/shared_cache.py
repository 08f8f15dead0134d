"""A cache level shared by many server instances, on Redis or Valkey (`--cache-redis`).

It takes the disk cache's place behind the memory cache (`AudioCache(memory, RedisCache(...))`)
and keeps the disk cache's rules: entries are keyed by `cache_key`, and each value carries its
full key and a SHA-256 of key and payload, checked on every read, so a flipped bit, a torn
write or a value stored under the wrong name is dropped and rendered again, never served. The
store's own eviction policy bounds its size (`maxmemory` with `allkeys-lru`); start-up warns
when the policy would refuse writes instead.

A store that is down or slow must never cost a response: every call has a short timeout, and
after a failure the store is skipped until `retry` seconds have passed, when the next call
tries it again: one log line when it fails, one when it answers again.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import threading
import time

from .cache import CacheStats

_LOGGER = logging.getLogger(__name__)

_MAGIC = b"WIXR"
_VERSION = 1
# magic, format version, the entry's key (hex sha256), payload length, sha256 of key + payload
_HEADER = struct.Struct("<4sI64sQ32s")
KEY_PREFIX = "wyoming-indextts:audio:"
DEFAULT_TIMEOUT = 0.25
"""Seconds one store call may take: a cache hit on a LAN answers in a millisecond or two."""
DEFAULT_RETRY = 30.0


def pack_entry(key: str, payload: bytes) -> bytes:
    key_bytes = key.encode("ascii")
    digest = hashlib.sha256(key_bytes + payload).digest()
    return _HEADER.pack(_MAGIC, _VERSION, key_bytes, len(payload), digest) + payload


def unpack_entry(key: str, value: bytes) -> bytes | None:
    """The payload if `value` is an intact entry of `key`, else None."""
    if len(value) < _HEADER.size:
        return None
    magic, version, stored_key, length, digest = _HEADER.unpack_from(value)
    payload = value[_HEADER.size :]
    key_bytes = key.encode("ascii")
    if magic != _MAGIC or version != _VERSION or stored_key != key_bytes or length != len(payload):
        return None
    if hashlib.sha256(key_bytes + payload).digest() != digest:
        return None
    return payload


class RedisCache:
    """L2 on a Redis/Valkey server at `url` (redis://HOST:PORT/DB, rediss://, unix://). Thread-safe."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT, retry: float = DEFAULT_RETRY) -> None:
        import redis  # the optional [redis] extra
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self.retry = retry
        self.stats = CacheStats()
        self._errors = (redis.RedisError, OSError)
        self._refusals = redis.ResponseError
        self._refusals_logged: set[str] = set()
        # No retries inside the client: one timeout is all a request may spend here.
        self._client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self._down = False

    def check(self) -> bool:
        """At start-up: True when the store answers; warns when it would refuse writes when full."""
        if self._call(self._client.ping) is None:
            return False
        try:
            policy = self._client.config_get("maxmemory-policy")
        except self._errors:
            return True  # managed stores may refuse CONFIG; their policy is theirs to tell
        if policy.get("maxmemory-policy") == "noeviction":
            _LOGGER.warning(
                "Redis at %s has maxmemory-policy noeviction: when full it refuses new audio; set allkeys-lru", self.url
            )
        return True

    @property
    def available(self) -> bool:
        with self._lock:
            return time.monotonic() >= self._skip_until

    def get(self, key: str) -> bytes | None:
        value = self._call(lambda: self._client.get(KEY_PREFIX + key))
        if value is None:
            return None
        payload = unpack_entry(key, value)
        if payload is None:
            _LOGGER.warning("Dropping corrupted or misfiled shared cache entry %s; it will be regenerated", key)
            self.stats.corrupt_dropped += 1
            self._call(lambda: self._client.delete(KEY_PREFIX + key))
        return payload

    def put(self, key: str, payload: bytes) -> None:
        self._call(lambda: self._client.set(KEY_PREFIX + key, pack_entry(key, payload)))

    def contains(self, key: str) -> bool:
        return bool(self._call(lambda: self._client.exists(KEY_PREFIX + key)))

    def pin(self, keys: list[str]) -> None:
        """Nothing to do: a shared store evicts by its own policy (pre-rendered texts found
        missing are rendered again by whichever instance lists them)."""

    def _call(self, operation):  # noqa: ANN001, ANN202 - a thunk over the client
        """`operation()`, or None when the store is skipped or fails (which starts a skip)."""
        if not self.available:
            return None
        try:
            result = operation()
        except self._refusals as err:
            # The store answered, so it is up: the trouble is one key or one command, such as
            # a key of another type under our prefix (WRONGTYPE). That call is a miss; the
            # next render's SET replaces the key whatever its type.
            self._log_refusal(err)
            return None
        except self._errors as err:
            with self._lock:
                went_down = not self._down  # once per outage, however many calls fail in it
                self._down = True
                self._skip_until = time.monotonic() + self.retry
            if went_down:
                _LOGGER.warning("Shared cache at %s failed (%s); skipping it, trying again every %g s", self.url, err, self.retry)
            return None
        with self._lock:
            came_back, self._down = self._down, False
        if came_back:
            _LOGGER.info("Shared cache at %s answers again", self.url)
        return result

    def _log_refusal(self, err: Exception) -> None:
        """Once per kind of refusal (its first word, e.g. WRONGTYPE): a key read on every
        request would otherwise log a line each time."""
        kind = str(err).split(" ", 1)[0]
        with self._lock:
            if kind in self._refusals_logged:
                return
            self._refusals_logged.add(kind)
        _LOGGER.warning("Shared cache at %s refused a command (%s); treating it as a miss", self.url, err)
