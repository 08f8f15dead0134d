"""Announcements rendered ahead of time in the cloned voice, so they play at once.

A cloned voice takes longer than a satellite waits for a sentence it has never heard. The
announcements a house makes every day are known in advance ("The washing machine is done."),
so they are rendered while the server is idle, at the lowest priority, into the cache, and
pinned there so eviction never drops them while they are listed. A restart finds them on disk
and renders nothing again; a text that cannot be spoken is reported once per run.

The list is one text per line (blank lines and `#` comments skipped), given per voice with
`--prerender [VOICE=]FILE`, or rendered once with `wyoming-indextts prerender --voice NAME FILE`.
With the web page a user also edits lists of their own (`EditedLists`), kept in the data folder
beside the cache. An edit does not start the run again (`Prerenderer.refresh`): the listed
sentences are pinned anew (one taken off is no longer pinned), and only sentences this run has
not rendered yet are rendered, the one under way going on. The lists together hold at most
`--prerender-max-texts` texts: a long list costs a long first run and pinned disk space.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .engines.base import Voice
from .render_queue import DEFAULT_BATCH
from .sentences import SentenceSplitter, SplitterSettings
from .synthesizer import Synthesizer

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrerenderList:
    voice: str | None
    """The voice to render in; None: the server's default voice."""
    path: Path

    def texts(self) -> list[str]:
        """The file's texts; raises OSError or UnicodeDecodeError for a file that can't be read."""
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@dataclass
class PrerenderProgress:
    total: int = 0
    cached: int = 0
    rendered: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.cached + self.rendered + self.failed


DEFAULT_MAX_TEXTS = 500
"""Texts all pre-render lists may hold together (`--prerender-max-texts`): a house's daily
announcements are a few dozen; 500 sentences of a cloned voice take hours to render on a CPU
and about 65 MB of pinned disk cache."""


class PrerenderListFull(ValueError):
    """An edit would take the lists beyond their limit; the message says what to do."""


def full_message(limit: int) -> str:
    return f"the pre-render lists hold {limit} texts, the most allowed: take one off first, or raise --prerender-max-texts"


@dataclass(frozen=True)
class Job:
    voice: Voice
    unit: str
    key: str


VOICE_LINE = "# voice: "
"""First line of an edited list: the voice's name (a comment to the list reader)."""


class EditedLists:
    """The lists edited on the web page: one file per voice in `folder`, in the list format,
    named by a digest of the voice's name (names may be in any script; the digest never leaves
    the folder) and written atomically, so a crash keeps either the old list or the new one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # Edits read, change and write a list: two at once must not lose one of them.
        self._lock = threading.Lock()

    def _path(self, voice: str) -> Path:
        return self.folder / f"{hashlib.sha256(voice.encode()).hexdigest()[:24]}.txt"

    def lists(self) -> list[PrerenderList]:
        found = []
        for path in sorted(self.folder.glob("*.txt")):
            with path.open(encoding="utf-8") as file:
                first = file.readline()
            if first.startswith(VOICE_LINE):
                found.append(PrerenderList(first.removeprefix(VOICE_LINE).strip(), path))
        return found

    def texts(self) -> dict[str, list[str]]:
        return {str(listed.voice): listed.texts() for listed in self.lists()}

    def add(self, voice: str, text: str, limit: int = DEFAULT_MAX_TEXTS, others: int = 0) -> None:
        """Add `text` to `voice`'s list unless it is there; raises PrerenderListFull when the
        lists would hold more than `limit` texts, `others` of them in lists not edited here."""
        with self._lock:
            lists = self.texts()
            texts = lists.get(voice, [])
            if text in texts:
                return
            if others + sum(len(listed) for listed in lists.values()) >= limit:
                raise PrerenderListFull(full_message(limit))
            self._write(voice, [*texts, text])

    def remove(self, voice: str, text: str) -> bool:
        with self._lock:
            texts = self.texts().get(voice, [])
            if text not in texts:
                return False
            self._write(voice, [t for t in texts if t != text])
            return True

    def _write(self, voice: str, texts: list[str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(voice)
        if not texts:
            path.unlink(missing_ok=True)
            return
        partial = path.with_suffix(".partial")
        partial.write_text("".join(f"{line}\n" for line in [VOICE_LINE + voice, *texts]), encoding="utf-8")
        os.replace(partial, path)


class ListSource(Protocol):
    """Lists kept by someone else (Home Assistant's replies), rendered after all others."""

    def lists(self) -> list[PrerenderList]: ...


class Prerenderer:
    """Renders listed texts into the cache, sentence by sentence, exactly as a request would
    split them (so the same cache keys answer), in the background, `batch` sentences of a
    voice at a time (`Synthesizer.render_many_for_cache`: batched decoding where the engine
    has it)."""

    def __init__(
        self,
        synthesizer: Synthesizer,
        splitter: SplitterSettings,
        listed: list[PrerenderList] | None = None,
        edited: EditedLists | None = None,
        extra: ListSource | None = None,
        max_texts: int = DEFAULT_MAX_TEXTS,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self.synthesizer = synthesizer
        self.batch = batch
        self.splitter = splitter
        self.listed = listed or []
        """The command line's lists; `refresh` renders them with the edited ones."""
        self.edited = edited
        self.extra = extra
        """Lists kept elsewhere (Home Assistant's replies): rendered after the others, capped by
        their own source, not counted against `max_texts`."""
        self.max_texts = max_texts
        self._wanted: dict[str, Job] = {}
        """Every listed sentence, by cache key, in list order."""
        self._outcomes: dict[str, str] = {}
        """What became of each sentence of `_wanted` rendered in this run: cached, rendered or failed."""
        self._refreshing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def progress(self) -> PrerenderProgress:
        tally = Counter(self._outcomes.get(key) for key in self._wanted)
        return PrerenderProgress(len(self._wanted), tally["cached"], tally["rendered"], tally["failed"])

    async def refresh(self) -> None:
        """Bring the work in line with the lists (at start-up, and after each edit): pin every
        listed sentence, and render in the background those this run has not rendered yet.
        Nothing already rendered is looked at again, and a render under way goes on."""
        async with self._refreshing:
            self._want(await asyncio.to_thread(self._jobs))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._render_wanted())

    async def add(self, voice: str, text: str) -> None:
        """Put an announcement on `voice`'s edited list and render it; raises PrerenderListFull."""
        edited = self._edited()
        others = await asyncio.to_thread(self._count_listed)
        await asyncio.to_thread(edited.add, voice, text, self.max_texts, others)
        await self.refresh()

    async def remove(self, voice: str, text: str) -> bool:
        """Take an announcement off `voice`'s edited list (its audio stays in the cache, no
        longer pinned); False when it was not listed."""
        removed = await asyncio.to_thread(self._edited().remove, voice, text)
        if removed:
            await self.refresh()
        return removed

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def units(self, text: str) -> list[str]:
        splitter = SentenceSplitter(self.splitter)
        return [*splitter.add(text), *splitter.finish()]

    async def run(self, lists: list[PrerenderList]) -> PrerenderProgress:
        """Pin every listed sentence, then render the missing ones; returns the tally (the
        `prerender` command, which renders its lists once)."""
        self._want(await asyncio.to_thread(self._jobs, lists))
        await self._render_wanted()
        return self.progress

    def _edited(self) -> EditedLists:
        if self.edited is None:
            raise RuntimeError("this server has no edited pre-render lists")
        return self.edited

    def _count_listed(self) -> int:
        """Texts of the command line's lists (they count against the edited lists' limit)."""
        return sum(len(texts) for texts in map(_readable_texts, self.listed))

    def _jobs(self, lists: list[PrerenderList] | None = None) -> list[Job]:
        """Every sentence of the first `max_texts` texts of `lists` (default: the command
        line's and the edited ones). Reads files: call it off the loop."""
        extra = []
        if lists is None:
            lists = [*self.listed, *(self.edited.lists() if self.edited is not None else [])]
            extra = self.extra.lists() if self.extra is not None else []
        jobs: list[Job] = []
        counted = 0
        for listed in lists:
            texts = _readable_texts(listed)
            if counted + len(texts) > self.max_texts:
                _LOGGER.error("The pre-render lists hold more than %d texts; the rest of %s is left out", self.max_texts, listed.path)
                texts = texts[: self.max_texts - counted]
            counted += len(texts)
            jobs.extend(self._listed_jobs(listed.voice, texts))
        for listed in extra:
            jobs.extend(self._listed_jobs(listed.voice, _readable_texts(listed)))
        return jobs

    def _listed_jobs(self, voice_name: str | None, texts: list[str]) -> list[Job]:
        voice = self.synthesizer.catalogue.resolve(voice_name)
        return [
            Job(voice, unit, self.synthesizer.key_for(voice, voice.output_format, unit)) for text in texts for unit in self.units(text)
        ]

    def _want(self, jobs: list[Job]) -> None:
        self._wanted = {job.key: job for job in jobs}
        # A sentence taken off and listed again later is looked at afresh (its entry may be gone).
        self._outcomes = {key: outcome for key, outcome in self._outcomes.items() if key in self._wanted}
        self.synthesizer.pin(list(self._wanted))

    def _next_batch(self) -> list[Job]:
        """The next sentences not rendered in this run, in list order: at most `batch`, all of
        the first one's voice."""
        batch: list[Job] = []
        for key, job in self._wanted.items():
            if key in self._outcomes or (batch and job.voice.name != batch[0].voice.name):
                continue
            batch.append(job)
            if len(batch) == self.batch:
                break
        return batch

    async def _render_wanted(self) -> None:
        while batch := self._next_batch():
            outcomes = await self.synthesizer.render_many_for_cache([job.unit for job in batch], batch[0].voice)
            for job, outcome in zip(batch, outcomes):
                if job.key not in self._wanted:
                    continue  # taken off the list while it rendered
                self._outcomes[job.key] = outcome if outcome in ("cached", "rendered") else "failed"
                progress = self.progress
                if outcome == "rendered":
                    _LOGGER.info("Pre-rendered %d of %d in %s: %r", progress.done, progress.total, job.voice.name, job.unit)
                elif outcome != "cached":
                    _LOGGER.warning("Cannot pre-render %r in %s: %s; it will be spoken live", job.unit, job.voice.name, outcome)
        progress = self.progress
        _LOGGER.info(
            "Pre-rendering done: %d sentences, %d already cached, %d rendered, %d failed",
            progress.total,
            progress.cached,
            progress.rendered,
            progress.failed,
        )


def _readable_texts(listed: PrerenderList) -> list[str]:
    try:
        return listed.texts()
    except (OSError, UnicodeDecodeError) as err:
        _LOGGER.error("Cannot read the pre-render list %s: %s", listed.path, err)
        return []
