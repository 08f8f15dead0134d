"""One engine rendering one sentence in a thread of its own, and what a live render holds.

Split from the synthesizer, which decides *which* engine speaks a sentence and for how long;
this module is *how* a render runs: its thread, the events it posts to the event loop, its
render slot (given back by the render itself, never by a client), and the gate that lets
background renders work only while no live render does.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from .engines.base import Engine, EngineError, Voice

_LOGGER = logging.getLogger(__name__)


class PriorityGate:
    """Lets background renders run only while no live render is working, and knows every
    render thread of its synthesizer, so that a stopping server can end them (`stop`)."""

    def __init__(self) -> None:
        self._live = 0
        self._condition = threading.Condition()
        self._running: set[RenderThread] = set()
        self._stopped = False

    def enter_live(self) -> None:
        with self._condition:
            self._live += 1

    def leave_live(self) -> None:
        with self._condition:
            self._live -= 1
            if self._live == 0:
                self._condition.notify_all()

    def wait_until_idle(self, cancelled: threading.Event) -> None:
        with self._condition:
            while self._live > 0 and not cancelled.is_set():
                self._condition.wait(timeout=0.5)

    def admit(self, render: RenderThread) -> bool:
        """Count a render thread about to start; False once the server is stopping."""
        with self._condition:
            if self._stopped:
                return False
            self._running.add(render)
            return True

    def discharge(self, render: RenderThread) -> None:
        with self._condition:
            self._running.discard(render)

    def stop(self, timeout: float) -> int:
        """Admit no new render, cancel every running one and wait up to `timeout` seconds for
        their threads to end; returns how many are still running (inside one engine call:
        an ONNX Runtime run ends only when it has finished)."""
        with self._condition:
            self._stopped = True
            running = list(self._running)
        for render in running:
            render.cancel()
        with self._condition:
            self._condition.notify_all()  # background renders waiting for idle see it now
        deadline = time.monotonic() + timeout
        for render in running:
            render.join(max(deadline - time.monotonic(), 0.0))
        return sum(render.alive for render in running)


class Slot:
    """What a live render holds: one of the `max_concurrent` render slots (or the last step's
    spare), and its place among the live renders that background renders yield to. Given back
    exactly once, from any thread."""

    def __init__(self, semaphore: asyncio.Semaphore, gate: PriorityGate) -> None:
        self._semaphore = semaphore
        self._gate = gate
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._released = False
        gate.enter_live()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._gate.leave_live()
        try:
            self._loop.call_soon_threadsafe(self._semaphore.release)
        except RuntimeError:
            pass  # the loop is closed: the server is shutting down


class RenderThread:
    """A render's own thread as the gate sees it: it can be cancelled, waited for, and asked
    whether it still runs (`PriorityGate.stop`)."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self.cancelled = threading.Event()
        self._thread = threading.Thread(target=target, name=name, daemon=True)

    def cancel(self) -> None:
        self.cancelled.set()

    def join(self, timeout: float) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class Render(RenderThread):
    """One engine speaking one sentence in a thread of its own, chunks posted to the loop.

    It owns its render slot (if any) and gives it back when it stops working for a listener:
    finished, failed, cancelled or moved to the background."""

    def __init__(
        self,
        engine: Engine,
        text: str,
        voice: Voice,
        gate: PriorityGate,
        opening: bool = True,
        slot: Slot | None = None,
    ) -> None:
        self.engine = engine
        self.text = text
        self.voice = voice
        self.opening = opening
        self.chunks: list[bytes] = []
        super().__init__(self._run, f"render-{engine.name}")
        self.background = threading.Event()
        self._finish_lock = threading.Lock()
        self._finished = False
        self.succeeded = False
        """Set once the engine ran to its end uncancelled: `chunks` then hold the whole sentence."""
        self.error: str | None = None
        """Why the engine failed, when it did."""
        self._on_background_done: Callable[[Render, bool], None] | None = None
        self._gate = gate
        self._slot = slot
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        self.started_at = 0.0

    def start(self) -> None:
        self.started_at = time.monotonic()
        if not self._gate.admit(self):
            # The server is stopping: no new thread inside an engine that is about to close.
            self.error = "the server is stopping"
            self._post("error", EngineError(self.error))
            self._finish(False)
            return
        self._thread.start()

    def cancel(self) -> None:
        super().cancel()
        self.release_slot()

    def release_slot(self) -> None:
        if self._slot is not None:
            self._slot.release()

    async def next_event(self, timeout: float) -> tuple[str, object]:
        """The next posted event; what is already queued is returned at once, however late,
        because the time a slow client took to read it is not the engine's."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return await asyncio.wait_for(self._queue.get(), max(timeout, 0.0))

    def _post(self, kind: str, value: object) -> None:
        if self.background.is_set():
            return  # nobody is listening any more
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))
        except RuntimeError:
            pass  # the loop is closed: the server is shutting down

    def move_to_background(self, on_done: Callable[["Render", bool], None]) -> bool:
        """Stop reporting to the loop and call `on_done(render, succeeded)` from the thread when
        finished. False when the render had already finished (then nothing will be called and
        `succeeded` says how it ended)."""
        with self._finish_lock:
            if self._finished:
                return False
            self._on_background_done = on_done
            self.background.set()
        self.release_slot()  # background renders yield to live ones through the gate instead
        return True

    def _run(self) -> None:
        succeeded = False
        try:
            iterator = iter(self.engine.synthesize(self.text, self.voice, opening=self.opening))
            while not self.cancelled.is_set():
                if self.background.is_set():
                    self._gate.wait_until_idle(self.cancelled)
                try:
                    chunk = next(iterator)
                except StopIteration:
                    succeeded = True
                    self._post("done", None)
                    break
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise EngineError(f"engine returned {type(chunk).__name__} instead of PCM bytes")
                chunk = bytes(chunk)
                self.chunks.append(chunk)
                self._post("chunk", chunk)
            else:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except BaseException as err:  # noqa: BLE001 - any engine failure passes the sentence on
            self.error = describe_error(err)
            self._post("error", err)
            if self.background.is_set():
                _LOGGER.warning("Background render by %s failed: %s", self.engine.name, err)
        finally:
            self._finish(succeeded)
            self._gate.discharge(self)

    def _finish(self, succeeded: bool) -> None:
        self.release_slot()
        with self._finish_lock:
            self._finished = True
            self.succeeded = succeeded and not self.cancelled.is_set()
            on_done = self._on_background_done
        if on_done is not None:
            on_done(self, self.succeeded)


class BatchCancelled(Exception):
    """Raised inside a batch's thread at its next pause once the batch is cancelled."""


class BatchRender(RenderThread):
    """Several sentences of one voice rendered by one engine call (`synthesize_batch`) in a
    thread of its own, as a background render: it waits while any live render works (`pause`,
    which the engine calls between its steps), and the gate knows it like a `Render`, so a
    stopping server cancels it at its next pause and waits for its thread."""

    def __init__(self, call: Callable[[Callable[[], None]], object], gate: PriorityGate) -> None:
        self._call = call
        self._gate = gate
        super().__init__(self._run, "render-batch")
        self._loop = asyncio.get_running_loop()
        self._result: asyncio.Future[object] = self._loop.create_future()
        # Once the awaiting task is cancelled nobody reads the outcome: mark it read, or asyncio
        # logs the batch's BatchCancelled as an exception never retrieved.
        self._result.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def run(self) -> object:
        """The call's result (or its exception); cancelling the awaiting task cancels the batch."""
        if not self._gate.admit(self):
            raise EngineError("the server is stopping")
        self._thread.start()
        try:
            return await asyncio.shield(self._result)
        except asyncio.CancelledError:
            self.cancel()
            raise

    def pause(self) -> None:
        self._gate.wait_until_idle(self.cancelled)
        if self.cancelled.is_set():
            raise BatchCancelled("the batch was cancelled")

    def _run(self) -> None:
        try:
            result = self._call(self.pause)
            self._post(self._result.set_result, result)
        except BaseException as err:  # noqa: BLE001 - handed to the awaiting task
            self._post(self._result.set_exception, err)
        finally:
            self._gate.discharge(self)

    def _post(self, setter: Callable[[object], None], value: object) -> None:
        def settle() -> None:
            if not self._result.done():
                setter(value)

        try:
            self._loop.call_soon_threadsafe(settle)
        except RuntimeError:
            pass  # the loop is closed: the server is shutting down


def describe_error(error: object) -> str:
    text = str(error) or type(error).__name__
    return text if isinstance(error, EngineError) else f"{type(error).__name__}: {text}"
