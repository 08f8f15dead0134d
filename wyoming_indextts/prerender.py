"""Announcements rendered ahead of time in the cloned voice, so they play at once.

A cloned voice takes longer than a satellite waits for a sentence it has never heard. The
announcements a house makes every day are known in advance ("The washing machine is done."),
so they are rendered while the server is idle, at the lowest priority, into the cache, and
pinned there so eviction never drops them while they are listed. A restart finds them on disk
and renders nothing again; a text that cannot be spoken is reported once per run.

The list is one text per line (blank lines and `#` comments skipped), given per voice with
`--prerender [VOICE=]FILE`, or rendered once with `wyoming-indextts prerender --voice NAME FILE`.
With the web page a user also edits lists of their own (`EditedLists`), kept in the data folder
beside the cache; each change re-runs the pre-renders in the background (`Prerenderer.restart`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

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

    def add(self, voice: str, text: str) -> None:
        with self._lock:
            texts = self.texts().get(voice, [])
            if text not in texts:
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
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self.synthesizer = synthesizer
        self.batch = batch
        self.splitter = splitter
        self.listed = listed or []
        """The command line's lists; `restart` renders them with the edited ones."""
        self.edited = edited
        self.progress = PrerenderProgress()
        self._task: asyncio.Task[PrerenderProgress] | None = None

    def restart(self) -> asyncio.Task[PrerenderProgress]:
        """(Re)start rendering every list in the background: a run under way is cancelled,
        since the next one finds what it rendered already in the cache."""
        if self._task is not None:
            self._task.cancel()
        lists = [*self.listed, *(self.edited.lists() if self.edited is not None else [])]
        self._task = asyncio.create_task(self.run(lists))
        return self._task

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def units(self, text: str) -> list[str]:
        splitter = SentenceSplitter(self.splitter)
        return [*splitter.add(text), *splitter.finish()]

    def batches(self, jobs: list[tuple[Voice, str]]) -> list[tuple[Voice, list[str]]]:
        """The jobs in list order, cut into runs of at most `batch` sentences of one voice."""
        runs: list[tuple[Voice, list[str]]] = []
        for voice, unit in jobs:
            if runs and runs[-1][0] is voice and len(runs[-1][1]) < self.batch:
                runs[-1][1].append(unit)
            else:
                runs.append((voice, [unit]))
        return runs

    async def run(self, lists: list[PrerenderList]) -> PrerenderProgress:
        """Pin every listed sentence, then render the missing ones; returns the tally."""
        jobs: list[tuple[Voice, str]] = []
        for listed in lists:
            try:
                texts = listed.texts()
            except (OSError, UnicodeDecodeError) as err:
                _LOGGER.error("Cannot read the pre-render list %s: %s", listed.path, err)
                continue
            voice = self.synthesizer.catalogue.resolve(listed.voice)
            for text in texts:
                jobs.extend((voice, unit) for unit in self.units(text))
        self.progress = PrerenderProgress(total=len(jobs))
        self.synthesizer.pin([self.synthesizer.key_for(voice, voice.output_format, unit) for voice, unit in jobs])
        for voice, units in self.batches(jobs):
            outcomes = await self.synthesizer.render_many_for_cache(units, voice)
            for unit, outcome in zip(units, outcomes):
                if outcome == "cached":
                    self.progress.cached += 1
                elif outcome == "rendered":
                    self.progress.rendered += 1
                    _LOGGER.info("Pre-rendered %d of %d in %s: %r", self.progress.done, self.progress.total, voice.name, unit)
                else:
                    self.progress.failed += 1
                    _LOGGER.warning("Cannot pre-render %r in %s: %s; it will be spoken live", unit, voice.name, outcome)
        _LOGGER.info(
            "Pre-rendering done: %d sentences, %d already cached, %d rendered, %d failed",
            self.progress.total,
            self.progress.cached,
            self.progress.rendered,
            self.progress.failed,
        )
        return self.progress
