"""A circuit breaker per engine: stop waiting on an engine that keeps failing."""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)


class BreakerState(enum.Enum):
    CLOSED = "closed"
    """Healthy: every request tries the engine."""
    OPEN = "open"
    """Failing: the engine is skipped until the cool-down ends."""
    HALF_OPEN = "half-open"
    """Cool-down over: one trial request is let through; its result decides."""


@dataclass(eq=False, frozen=True)
class Permit:
    """Leave to use the engine for one request; `trial` when it is the half-open state's one."""

    trial: bool


_ALLOWED = Permit(trial=False)


class Breaker:
    """After `failure_threshold` consecutive failures the engine is skipped for `cooldown`
    seconds, then tried again with exactly one request. Every state change is logged."""

    def __init__(
        self,
        name: str,
        failure_threshold: int = 3,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self.failures_total = 0
        """Every failure since start (for metrics); `_failures` counts consecutive ones."""
        self._opened_at = 0.0
        self._trial: Permit | None = None

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    def allow(self) -> Permit | None:
        """May a request use the engine now? In half-open state only the first caller may.
        Whoever gets a permit reports a success or a failure, or gives the permit back with
        `release` when the request ended without a verdict (its client left)."""
        with self._lock:
            if self._state is BreakerState.OPEN:
                if self._clock() - self._opened_at < self.cooldown:
                    return None
                self._set(BreakerState.HALF_OPEN, "cool-down over, trying one request")
            if self._state is BreakerState.HALF_OPEN:
                if self._trial is not None:
                    return None
                self._trial = Permit(trial=True)
                return self._trial
            return _ALLOWED

    def release(self, permit: Permit) -> None:
        """A request ended without a verdict: if it was the trial, the next request is."""
        with self._lock:
            if permit is self._trial:
                self._trial = None

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._trial = None
            if self._state is not BreakerState.CLOSED:
                self._set(BreakerState.CLOSED, "trial request succeeded")

    def record_failure(self, reason: str) -> None:
        with self._lock:
            self._failures += 1
            self._trial = None
            self.failures_total += 1
            if self._state is BreakerState.HALF_OPEN:
                self._open(f"trial request failed: {reason}")
            elif self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold:
                self._open(f"{self._failures} consecutive failures, last: {reason}")

    def _open(self, why: str) -> None:
        self._opened_at = self._clock()
        self._set(BreakerState.OPEN, f"{why}; skipping it for {self.cooldown:g} s")

    def _set(self, state: BreakerState, why: str) -> None:
        _LOGGER.warning("Engine %s breaker %s -> %s (%s)", self.name, self._state.value, state.value, why)
        self._state = state
