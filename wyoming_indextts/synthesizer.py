"""One sentence in, PCM in the response's format out: cache first, then the engine chain.

Each engine renders in a worker thread of its own (ONNX Runtime releases the GIL) so the
event loop keeps answering `describe`. At most `max_concurrent` live renders run at once;
the rest wait their turn, and the wait counts against the step's deadline. A render slot is
held by the render itself, never by the client being written to: it comes back when the
engine finishes, fails, is abandoned or moves to the background, so a client that leaves or
stops reading cannot keep one. Every chain step has a deadline for its first audio, the same
deadline for a stall between chunks once the listener has played what it had, and a cap on
the engine's time for the whole sentence; a step that fails, times out or yields no audio
hands the sentence to the next step. Requests for the same step's audio at the same time share
one render (`flight.py`). A timed-out render of the voice's own engine is not
thrown away: it finishes in the background at lower priority and lands in the cache under the
voice's own key. Every sentence a fallback spoke for a cloned voice also goes into the render
queue on disk (render_queue.py), which renders it later, batched, whatever happens to the
process meanwhile. How one render runs (its thread, slot and priority) is in render.py; who
spoke each sentence is counted in heard.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from .audio import AudioFormat, StreamResampler
from .breaker import Breaker, Permit
from .cache import AudioCache, cache_key
from .engines.base import BUNDLED_ENGINES, LAST_RESORT, Engine, EngineError, Voice
from .flight import Flight, FlightFailed
from .heard import HeardCounts, Spoken
from .render import BatchCancelled, BatchRender, PriorityGate, Render, Slot, describe_error
from .render_queue import RenderQueue
from .voices import VoiceCatalogue, language_name, script_language, speaks

_LOGGER = logging.getLogger(__name__)

LAST_STEP_SLOT_WAIT = 1.0
"""Seconds the chain's last step waits for a render slot before it may take the one spare
slot beyond `max_concurrent`: the bundled voice needs a fraction of a core for a moment, and a
house that hears nothing because every slot renders a slow cloned voice is worse. One spare,
not one per request, or a crowd of clients could start any number of renders at once."""


@dataclass
class ChainSettings:
    fallbacks: Sequence[str] = ()
    """Engines tried after a voice's own engine, in order; the bundled voice always ends the chain."""

    default_deadline: float = 2.0
    """Seconds a step may take to its first audio, waiting for a render slot included. The
    chain's last step has none: it is given the sentence cap, since nothing comes after it.

    2 s because a Voice PE satellite abandons TTS when no audio arrived within about 5 s (and
    ESPHome media players in some set-ups give up after 2 s of waiting to start playback):
    the bundled voice's first audio is a fraction of that (benchmarks/RESULTS.md,
    `bench_vs_piper`), so after a missed 2 s deadline the fallback still starts well inside
    both. A cloned voice on a CPU needs far longer for a fresh sentence (`indextts`,
    `indextts25`), so no deadline a satellite tolerates saves it; its render goes on in the
    background while there is room, and the render queue keeps the sentence, for the next time."""

    deadlines: Mapping[str, float] = field(default_factory=dict)
    """Per-engine overrides of `default_deadline`."""

    sentence_cap: float = 60.0
    """Seconds a step may take for a whole sentence."""

    breaker_failures: int = 3
    breaker_cooldown: float = 30.0

    late_renders: int = 2
    """Timed-out renders kept finishing in the background (they are in the render queue too,
    so one not kept is rendered from there later)."""

    def deadline(self, engine: str) -> float:
        return self.deadlines.get(engine, self.default_deadline)


class StepFailed(Exception):
    """A chain step gave up; the message says why, for the log and the breaker.

    `engine_fault` is False when the engine is not to blame: the text yielded no audio (a
    lone "٣"), or every render slot stayed busy. Those must not open its breaker, or a few
    odd requests could mute the server for everyone."""

    def __init__(self, message: str, timed_out: bool = False, engine_fault: bool = True) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.engine_fault = engine_fault


class NoAudioError(Exception):
    """Every step of the chain failed for a sentence."""


class Synthesizer:
    def __init__(
        self,
        catalogue: VoiceCatalogue,
        cache: AudioCache | None,
        max_concurrent: int,
        settings: ChainSettings | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.cache = cache
        self.settings = settings or ChainSettings()
        self._slots = asyncio.Semaphore(max_concurrent)
        self._spare = asyncio.Semaphore(1)
        self._gate = PriorityGate()
        self._late: set[Render] = set()
        self._late_lock = threading.Lock()
        self._disk_writes: set[asyncio.Future[None]] = set()
        self._flights: dict[tuple[str, bool, bool], Flight] = {}
        """Renders in progress by (cache key, last step, the request's own voice): identical
        requests join the one there (`flight.py`)."""
        self.queue: RenderQueue | None = None
        """Where sentences a fallback spoke for a cloned voice wait for their render (set by the service)."""
        self.heard: HeardCounts | None = None
        """Counts of who spoke each sentence (set by the service)."""
        self.queued = asyncio.Event()
        """Set when a sentence was queued: wakes the queue's renderer."""
        self._background = asyncio.Lock()
        """One batch of background renders at a time: on a small CPU two would only share it."""
        self.breakers = {
            name: Breaker(name, self.settings.breaker_failures, self.settings.breaker_cooldown)
            for name in catalogue.engines
        }

    def chain(self, voice: Voice, text: str = "") -> list[tuple[Engine, Voice]]:
        """The steps that may speak `text` for `voice`, in order. Text in a script that gives
        its language away (Han, kana, Hangul) goes only to voices of that language: the
        requested voice when it speaks it, else each engine's voice for it."""
        script = script_language(text)
        language = script or (voice.languages[0] if voice.languages else "en")
        own = script is None or speaks(voice, script)
        # Engines with a voice of the same name (the local copy of a remote voice) come first.
        twins = [name for name in self.catalogue.engines if own and self.catalogue.twin(name, voice) is not None]
        names = [voice.engine, *twins, *self.settings.fallbacks, *BUNDLED_ENGINES]
        steps: list[tuple[Engine, Voice]] = []
        seen: set[str] = set()
        for name in names:
            if name in seen or name not in self.catalogue.engines:
                continue
            seen.add(name)
            step_voice = (
                voice
                if name == voice.engine and own
                else (self.catalogue.twin(name, voice) if own else None)
                or self.catalogue.fallback_voice(name, language, last_resort=name == LAST_RESORT and script is None)
            )
            if step_voice is not None:
                steps.append((self.catalogue.engines[name], step_voice))
        return steps

    def key_for(self, voice: Voice, fmt: AudioFormat, text: str) -> str:
        return cache_key(
            engine=voice.engine,
            voice=voice.name,
            fingerprint=voice.fingerprint,
            rate=fmt.rate,
            width=fmt.width,
            channels=fmt.channels,
            text=text,
        )

    async def speak(
        self,
        text: str,
        voice: Voice,
        fmt: AudioFormat,
        late_engines: set[str] | None = None,
        opening: bool = True,
        heard: list[Spoken] | None = None,
    ) -> AsyncIterator[bytes]:
        """Yield the audio of one normalised sentence as PCM in `fmt`.

        `late_engines` belongs to one response: an engine that missed a deadline in it is
        added, and later sentences of that response go straight to the next step instead of
        making the house wait a deadline per sentence. The voice's own engine still renders
        them later, from the render queue. `opening` marks the first sentence of a response
        (see `Engine.synthesize`). Who spoke the sentence is appended to `heard`."""
        late_engines = late_engines if late_engines is not None else set()
        failures: list[str] = []
        steps = self.chain(voice, text)
        if not steps:
            language = script_language(text) or "?"
            raise NoAudioError(f"no configured voice speaks {language_name(language)}")
        for index, (engine, step_voice) in enumerate(steps):
            key = self.key_for(step_voice, fmt, text)
            if engine.name in late_engines:
                # A reply switches voice at most once: after its voice missed a deadline the
                # rest stays with the fallback, even sentences cached in the voice, because
                # switching back and forth inside one reply is worse than one switch. The
                # voice renders what it lacks later, from the render queue.
                failures.append(f"{engine.name}: skipped, too slow earlier in this response")
                continue
            cached = await self._cached(key)
            if cached is not None:
                _LOGGER.debug("Cache hit: %s voice %s: %r", engine.name, step_voice.name, text)
                self._spoke(voice, step_voice, engine, True, text, opening, heard)  # render queue & counts
                yield cached
                return
            # The last step is never skipped, and it has no deadline for its first audio (only
            # the sentence cap): nothing comes after it, so giving up early means silence.
            last = index == len(steps) - 1
            own_voice = step_voice is voice
            flight_key = (key, last, own_voice)
            flight = self._flights.get(flight_key)
            if flight is None or not flight.joinable:
                permit = self.breakers[engine.name].allow()
                if permit is None and not last:
                    failures.append(f"{engine.name}: skipped, breaker open")
                    continue
                step = partial(self._fly, engine, step_voice, text, fmt, own_voice, key, opening, last, permit)
                flight = Flight(step, on_finish=lambda done, k=flight_key: self._land(k, done))
                self._flights[flight_key] = flight
            delivered = 0
            try:
                async with contextlib.aclosing(flight.listen()) as pieces:
                    async for piece in pieces:
                        if not delivered:  # render queue & counts, known before the first audio goes out
                            self._spoke(voice, step_voice, engine, False, text, opening, heard)
                        delivered += len(piece)
                        yield piece
            except FlightFailed as failed:
                err = failed.error if isinstance(failed.error, StepFailed) else StepFailed(describe_error(failed.error))
                failures.append(f"{engine.name}: {err}")
                if err.timed_out and not last:
                    late_engines.add(engine.name)
                if delivered:
                    # No engine can say "the rest of this sentence": the text behind audio
                    # already heard is not known. Skipping to the next sentence would leave the
                    # house with half an announcement ("The front door is..."), so the next
                    # engine says the whole sentence again; a sentence is short (the first
                    # clause of a reply goes alone), so the repeat is a few words.
                    _LOGGER.warning(
                        "%s failed after %.2f s of audio for %r (%s); the next engine speaks the whole sentence",
                        engine.name,
                        fmt.seconds(delivered),
                        text,
                        err,
                    )
                else:
                    _LOGGER.warning("%s failed for %r: %s; trying the next engine", engine.name, text, err)
                continue
            return
        raise NoAudioError("no engine could speak this sentence (" + "; ".join(failures) + ")")

    async def _fly(
        self,
        engine: Engine,
        voice: Voice,
        text: str,
        fmt: AudioFormat,
        own_voice: bool,
        key: str,
        opening: bool,
        last: bool,
        permit: Permit | None,
        flight: Flight,
    ) -> None:
        """Run one step for a flight's listeners: its render, the breaker's verdict on it (one
        per render, however many listen) and the cache entry when it succeeds."""
        breaker = self.breakers[engine.name]
        started = time.monotonic()
        judged = False
        try:
            run = self._run_step(engine, voice, text, fmt, own_voice, key, opening, last)
            async with contextlib.aclosing(run) as pieces:
                async for piece in pieces:
                    flight.publish(piece)
            breaker.record_success()
            judged = True
        except StepFailed as err:
            if err.engine_fault:
                breaker.record_failure(str(err))
                judged = True
            raise
        finally:
            # A trial whose listeners all left, or whose text said nothing, decided nothing:
            # the next request becomes the trial, or the engine would be skipped for ever.
            if permit is not None and not judged:
                breaker.release(permit)
        pcm = b"".join(flight.pieces)
        _LOGGER.info(
            "Spoken by %s voice %s: %.2f s of audio in %.3f s: %r",
            engine.name,
            voice.name,
            fmt.seconds(len(pcm)),
            time.monotonic() - started,
            text,
        )
        self._store(key, pcm)

    def _land(self, flight_key: tuple[str, bool, bool], flight: Flight) -> None:
        """A flight ended: the next request for its audio finds it in the cache (stored just
        before), or starts a render of its own."""
        if self._flights.get(flight_key) is flight:
            del self._flights[flight_key]


    def _store(self, key: str, pcm: bytes) -> None:
        """Into memory now; onto disk in the background, so an fsync on a slow SD card never
        delays the next sentence."""
        if self.cache is None or not pcm:
            return
        self.cache.remember(key, pcm)
        disk = self.cache.disk
        if disk is not None:
            write = asyncio.get_running_loop().run_in_executor(None, disk.put, key, pcm)
            self._disk_writes.add(write)
            write.add_done_callback(self._disk_writes.discard)

    async def stop(self, timeout: float) -> int:
        """At shutdown: start no render any more, cancel the running ones (live, late and
        pre-renders), wait up to `timeout` seconds for their threads and for the cache writes
        under way. Returns how many render threads are still inside their engine."""
        stuck = await asyncio.to_thread(self._gate.stop, timeout)
        await self.drain()
        return stuck


    async def drain(self) -> None:
        """Wait for pending disk-cache writes (at shutdown, and in tests)."""
        if self._disk_writes:
            await asyncio.gather(*list(self._disk_writes))

    async def _cached(self, key: str) -> bytes | None:
        if self.cache is None:
            return None
        # L1 answers on the loop; only a miss there costs a disk read, kept off the loop.
        hit = self.cache.memory_get(key)
        if hit is not None:
            return hit
        return await asyncio.to_thread(self.cache.disk_get, key)

    async def _run_step(
        self,
        engine: Engine,
        voice: Voice,
        text: str,
        fmt: AudioFormat,
        own_voice: bool,
        key: str,
        opening: bool,
        last: bool,
    ) -> AsyncIterator[bytes]:
        deadline = self.settings.deadline(engine.name)
        step_started = time.monotonic()
        # Waiting for a slot counts against the deadline, so a busy server still hands the
        # sentence on in time instead of leaving the listener with nothing.
        semaphore = self._slots
        try:
            await asyncio.wait_for(self._slots.acquire(), min(deadline, LAST_STEP_SLOT_WAIT) if last else deadline)
        except asyncio.TimeoutError:
            if not last:
                raise StepFailed(f"no free render slot within {deadline:g} s", engine_fault=False) from None
            # The last step waits as long as it takes: nothing comes after it,
            # so giving up would drop the sentence from a reply that is under way. The wait is
            # bounded all the same: every render gives its slot back within the sentence cap.
            _LOGGER.warning("Every render slot is busy: %s waits for the spare one for %r", engine.name, text)
            semaphore = await self._first_free(self._slots, self._spare)
        render = Render(engine, text, voice, self._gate, opening, Slot(semaphore, self._gate))
        resampler = StreamResampler(voice.sample_rate, fmt.rate)
        try:
            render.start()
            first = True
            total = 0
            yielded = 0
            heard_until = 0.0  # when the listener has played all the audio yielded so far
            while True:
                now = time.monotonic()
                # The cap is the engine's time, not the network's: it counts from the render's
                # start, and whatever is queued already is taken at once.
                cap_left = self.settings.sentence_cap - (now - render.started_at)
                if last:
                    limit = cap_left
                elif first:
                    limit = deadline - (now - step_started)
                else:
                    # An engine that stalls between chunks hands over like one
                    # that misses its first audio: once the listener has played what it has,
                    # the step may leave it at most `deadline` of silence. An engine that
                    # renders faster than real time keeps its lead, so a long segment after a
                    # short one is not cut for being slow to arrive while audio still plays.
                    limit = min(max(heard_until - now, 0.0) + deadline, cap_left)
                try:
                    kind, value = await render.next_event(limit)
                except asyncio.TimeoutError:
                    if first and not last:
                        why = f"no first audio within {deadline:g} s"
                    elif limit < cap_left:
                        why = f"the audio stopped for {deadline:g} s after {fmt.seconds(yielded):.2f} s of it"
                    else:
                        why = f"the whole sentence took longer than {self.settings.sentence_cap:g} s"
                    self._abandon(render, own_voice, key)
                    raise StepFailed(why, timed_out=True) from None
                if kind == "error":
                    raise StepFailed(describe_error(value))
                if kind == "done":
                    break
                assert isinstance(value, bytes)
                total += len(value)
                out = resampler.feed(value)
                if out:
                    first = False
                    yielded += len(out)
                    heard_until = max(heard_until, time.monotonic()) + fmt.seconds(len(out))
                    yield out
            tail = resampler.flush()
            if tail:
                yield tail
            if total == 0:
                raise StepFailed("engine returned no audio", engine_fault=False)
        except BaseException:
            if not render.background.is_set():
                render.cancel()
            raise

    @staticmethod
    async def _first_free(*semaphores: asyncio.Semaphore) -> asyncio.Semaphore:
        """Acquire whichever of the semaphores frees first; the others are left untouched."""
        waits = {asyncio.ensure_future(semaphore.acquire()): semaphore for semaphore in semaphores}
        winner: asyncio.Future[bool] | None = None
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            winner = next(iter(done))
            return waits[winner]
        finally:
            for wait, semaphore in waits.items():
                if wait is winner:
                    continue
                if wait.done() and not wait.cancelled():
                    semaphore.release()  # acquired in the same moment, or as we were cancelled
                else:
                    wait.cancel()

    def _abandon(self, render: Render, own_voice: bool, key: str) -> None:
        """A step ran out of time. Keep the voice's own render going in the background, so the
        next request for this sentence is in the right voice; drop it when too many are already."""
        if not own_voice or not self._claim_late_slot(render):
            render.cancel()
            return
        if render.move_to_background(lambda finished, ok: self._store_late(finished, ok, key)):
            _LOGGER.info("Render by %s continues in the background for %r", render.engine.name, render.text)
        else:
            # It finished between the timeout and now: cache it only if it finished well, or a
            # failed render's partial audio would be served as the whole sentence.
            self._store_late(render, render.succeeded, key)

    def _spoke(
        self, asked: Voice, spoke: Voice, engine: Engine, cached: bool, text: str, opening: bool, heard: list[Spoken] | None
    ) -> None:
        """Note who speaks a sentence: in `heard` (the response's), in the counts, and, when a
        fallback speaks for a cloned voice, in the render queue. The ledger writes run off the
        loop, like disk-cache writes (`drain` waits for them)."""
        own = spoke.name == asked.name  # a remote voice's local twin is the same voice
        queued = not own and asked.engine not in BUNDLED_ENGINES and self.queue is not None and self.cache is not None
        spoken = Spoken(asked.name, spoke.name, engine.name, ("cache" if cached else "live") if own else "fallback", queued)
        if heard is not None:
            heard.append(spoken)
        if self.heard is None and not queued:
            return
        key = self.key_for(asked, asked.output_format, text) if queued else ""
        write = asyncio.get_running_loop().run_in_executor(None, self._remember, spoken, opening, key, text)
        self._disk_writes.add(write)
        write.add_done_callback(self._disk_writes.discard)
        if queued:
            write.add_done_callback(lambda _: self.queued.set())

    def _remember(self, spoken: Spoken, opening: bool, key: str, text: str) -> None:
        try:
            if self.heard is not None:
                self.heard.record(spoken, reply=opening)
            if spoken.queued and self.queue is not None:
                self.queue.add(key, spoken.asked, text)
        except sqlite3.Error as err:  # a full disk must not stop the speaking
            _LOGGER.error("Cannot write who spoke %r to the ledger: %s", text, err)

    def _claim_late_slot(self, render: Render) -> bool:
        if self.cache is None:
            return False
        with self._late_lock:
            if len(self._late) >= self.settings.late_renders:
                _LOGGER.info("Not keeping the late render of %r (%d already running): the render queue has it", render.text, len(self._late))
                return False
            self._late.add(render)
            return True

    def _store_late(self, render: Render, succeeded: bool, key: str) -> None:
        with self._late_lock:
            self._late.discard(render)
        pcm = b"".join(render.chunks)
        if succeeded and pcm and self.cache is not None:
            self.cache.put(key, pcm)
            _LOGGER.info("Late render by %s cached for %r", render.engine.name, render.text)
            if self.queue is not None:  # queued when the fallback spoke: nothing left to do
                with contextlib.suppress(sqlite3.Error):
                    self.queue.done(key)

    def pin(self, keys: list[str]) -> None:
        """Keep these entries on disk whatever eviction would choose (pre-rendered texts)."""
        if self.cache is not None:
            self.cache.pin(keys)

    async def render_for_cache(self, text: str, voice: Voice) -> str:
        """Render one sentence in the voice's own engine into the cache, at the lowest
        priority (it pauses while any live render works) and with no deadline, since nobody is
        waiting. Returns "cached" when it already was, "rendered", or why it failed."""
        if self.cache is None:
            return "the cache is off (--no-cache)"
        key = self.key_for(voice, voice.output_format, text)
        if await self._cached(key) is not None:
            return "cached"
        return await self._render_into_cache(text, voice, key)

    async def _render_into_cache(self, text: str, voice: Voice, key: str) -> str:
        """`render_for_cache` of a sentence known to be missing from the cache."""
        assert self.cache is not None
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[bool] = loop.create_future()

        def on_done(_: Render, succeeded: bool) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the server stopped
                loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(succeeded))

        render = Render(self.catalogue.engines[voice.engine], text, voice, self._gate, opening=False)
        render.move_to_background(on_done)
        render.start()
        try:
            succeeded = await finished
        except asyncio.CancelledError:
            render.cancel()
            raise
        pcm = b"".join(render.chunks)
        if not succeeded or not pcm:
            return render.error or "the engine returned no audio"
        await asyncio.to_thread(self.cache.put, key, pcm)
        return "rendered"

    async def render_many_for_cache(self, texts: Sequence[str], voice: Voice) -> list[str]:
        """`render_for_cache` for several sentences of one voice: one outcome per text. Where
        the engine has batched decoding (`synthesize_batch`) the missing ones render as one
        batch (the same audio as one by one, more sentences per CPU hour); the batch pauses at
        every GPT decode and diffusion step while a live render works. One batch runs at a time."""
        if self.cache is None:
            return ["the cache is off (--no-cache)"] * len(texts)
        outcomes = ["cached"] * len(texts)
        async with self._background:
            keys = [self.key_for(voice, voice.output_format, text) for text in texts]
            missing = [index for index, key in enumerate(keys) if await self._cached(key) is None]
            engine = self.catalogue.engines[voice.engine]
            batched = None
            if len(missing) > 1 and hasattr(engine, "synthesize_batch"):
                batched = await self._render_batch(engine, [texts[index] for index in missing], voice)
                if batched is not None:
                    _LOGGER.info("Rendered %d sentences in %s as one batch", len(missing), voice.name)
            for position, index in enumerate(missing):
                if batched is None:
                    outcomes[index] = await self._render_into_cache(texts[index], voice, keys[index])
                    continue
                pcm = batched[position]
                if isinstance(pcm, EngineError):
                    outcomes[index] = describe_error(pcm)
                else:
                    await asyncio.to_thread(self.cache.put, keys[index], pcm)
                    outcomes[index] = "rendered"
        return outcomes

    async def _render_batch(self, engine: Engine, texts: list[str], voice: Voice) -> list[bytes | EngineError] | None:
        """The engine's batched render in a worker thread, yielding to live renders; None when
        the engine cannot batch (a model exported before batched decoding)."""
        batch = BatchRender(partial(engine.synthesize_batch, texts, voice), self._gate)  # type: ignore[attr-defined]
        try:
            return await batch.run()  # type: ignore[return-value]
        except BatchCancelled:
            raise asyncio.CancelledError from None  # the server is stopping
        except Exception as err:  # noqa: BLE001 - one by one, each text then gets its own outcome
            _LOGGER.warning("Batched render failed, rendering one by one: %s", describe_error(err))
            return None

    def late_render_count(self) -> int:
        with self._late_lock:
            return len(self._late)
