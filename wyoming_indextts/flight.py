"""One render of one chain step shared by every request that asks for the same audio at once.

Forty clients asking for "The doorbell rang." in the same moment get one render, not forty:
the first request starts a flight, the others join it, and each of them hears every chunk as
soon as the render produces it (what came before they joined, then the rest as it comes). The
flight runs in a task of its own, so a client that leaves or reads slowly takes nothing away
from the others; it is cancelled (and its render with it) only when the last listener leaves.
A step that fails or times out fails for every listener at once, and each goes on to the next
step of its own chain. The synthesizer decides what a flight renders (`Synthesizer._fly`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


class FlightFailed(Exception):
    """The flight's step gave up: `error` is the exception it gave up with (a StepFailed, or
    a fault of the code that ran it), raised in each listener as it reaches the end."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class Flight:
    """PCM pieces of one render, in order, for any number of listeners."""

    def __init__(self, fly: Callable[[Flight], Coroutine[Any, Any, None]], on_finish: Callable[[Flight], None]) -> None:
        self.pieces: list[bytes] = []
        self.error: BaseException | None = None
        self.finished = False
        self._cancelled = False
        self._listeners = 0
        self._changed = asyncio.Event()
        self._on_finish = on_finish
        self._task = asyncio.create_task(self._fly(fly))

    @property
    def joinable(self) -> bool:
        """False once it ended or was cancelled (its last listener left): start a new one."""
        return not (self.finished or self._cancelled)

    @property
    def listeners(self) -> int:
        return self._listeners

    def publish(self, piece: bytes) -> None:
        self.pieces.append(piece)
        self._wake()

    async def listen(self) -> AsyncIterator[bytes]:
        """Every piece of the render, from the first; raises FlightFailed after the pieces
        produced before the step gave up."""
        self._listeners += 1
        try:
            index = 0
            while True:
                while index < len(self.pieces):
                    index += 1
                    yield self.pieces[index - 1]
                if self.finished:
                    break
                await self._changed.wait()
            if self.error is not None:
                raise FlightFailed(self.error)
        finally:
            self._listeners -= 1
            if self._listeners == 0 and not self.finished:
                # Nobody hears it any more: stop the render now, so its slot is free at once.
                self._cancelled = True
                self._task.cancel()

    async def _fly(self, fly: Callable[[Flight], Coroutine[Any, Any, None]]) -> None:
        try:
            await fly(self)
        except BaseException as err:  # noqa: BLE001 - every listener hears why, then decides
            self.error = err
            if not isinstance(err, Exception):
                raise  # cancelled: nobody listens (or the server stops)
        finally:
            self.finished = True
            self._on_finish(self)
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
