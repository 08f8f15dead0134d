"""Home Assistant's replies kept in the pre-render lists, and how far their rendering is.

Each time the house's names change, the replies are expanded again for every voice that
renders them (in the languages the voice speaks) and written as a pre-render list per voice
in the data folder; the pre-renderer then renders what is new, after the user's own lists
(lowest priority, pinned in the cache), and re-pins, so replies that are gone lose their pin
and eviction may take them.

Progress (`status`): replies listed, rendered (every sentence of the reply in the cache),
left, and the time to finish at the speed measured since the list last changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..engines.base import Voice
from ..prerender import VOICE_LINE, EditedLists, PrerenderList
from ..sentences import SentenceSplitter, SplitterSettings
from ..synthesizer import Synthesizer
from .house import House
from .replies import DEFAULT_MAX_REPLIES, expand, intents_language

_LOGGER = logging.getLogger(__name__)


@dataclass
class _Listed:
    voice: Voice
    path: Path
    keys: list[list[str]] = field(default_factory=list)
    """Per reply, the cache keys of its sentences."""


@dataclass
class _Speed:
    since: float
    rendered: int


class RepliesAhead:
    def __init__(
        self,
        synthesizer: Synthesizer,
        splitter: SplitterSettings,
        folder: Path,
        voices: list[str | None],
        max_replies: int = DEFAULT_MAX_REPLIES,
        on_change: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.synthesizer = synthesizer
        self.splitter = splitter
        self.folder = folder
        self.voices = voices
        """Voice names; None: the server's default voice."""
        self.max_replies = max_replies
        self.on_change = on_change
        self.failed = 0
        """Templates that could not be rendered in the last expansion."""
        self.names: dict[str, int] | None = None
        self._listed: list[_Listed] = []
        self._speed: _Speed | None = None

    def lists(self) -> list[PrerenderList]:
        """The current lists; before the first names of this run, those the last run wrote,
        so a restart with Home Assistant out of reach keeps the replies pinned."""
        if not self._listed:
            return EditedLists(self.folder).lists() if self.folder.is_dir() else []
        return [PrerenderList(listed.voice.name, listed.path) for listed in self._listed]

    async def update(self, house: House) -> None:
        """New names: expand, write the lists, and have them rendered."""
        self._listed = await asyncio.to_thread(self._write_lists, house)
        self.names = {"areas": len(house.areas), "floors": len(house.floors), "entities": len(house.entities)}
        self._speed = None
        if self.on_change is not None:
            await self.on_change()

    def _write_lists(self, house: House) -> list[_Listed]:
        listed = []
        self.folder.mkdir(parents=True, exist_ok=True)
        self.failed = 0
        for name in self.voices:
            voice = self.synthesizer.catalogue.resolve(name)
            languages = sorted({code for code in map(intents_language, voice.languages or ("en",)) if code})
            if not languages:
                _LOGGER.warning("No Home Assistant replies for voice %s: home-assistant-intents has none of %s", voice.name, voice.languages)
                continue
            expansion = expand(house, languages, self.max_replies)
            self.failed += expansion.failed
            texts = [" ".join(reply.text.split()) for reply in expansion.replies]
            path = self.folder / f"{hashlib.sha256(voice.name.encode()).hexdigest()[:24]}.txt"
            partial = path.with_suffix(".partial")
            # A reply never starts with '#', the list format's comment mark; a space keeps it a text if one did.
            lines = [VOICE_LINE + voice.name, *(f" {text}" if text.startswith("#") else text for text in texts)]
            partial.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
            os.replace(partial, path)
            keys = [[self._key(voice, unit) for unit in self._units(text)] for text in texts]
            listed.append(_Listed(voice, path, keys))
            _LOGGER.info(
                "Home Assistant replies for %s in %s: %d listed of %d (cap %d), %d templates skipped",
                voice.name,
                ", ".join(languages),
                len(texts),
                expansion.available,
                self.max_replies,
                expansion.failed,
            )
        return listed

    def _units(self, text: str) -> list[str]:
        splitter = SentenceSplitter(self.splitter)
        return [*splitter.add(text), *splitter.finish()]

    def _key(self, voice: Voice, unit: str) -> str:
        return self.synthesizer.key_for(voice, voice.output_format, unit)

    async def status(self) -> dict:
        listed = sum(len(entry.keys) for entry in self._listed)
        rendered = await asyncio.to_thread(self._rendered)
        now = time.monotonic()
        if self._speed is None or rendered < self._speed.rendered:
            self._speed = _Speed(now, rendered)
        left = listed - rendered
        done_since = rendered - self._speed.rendered
        per_reply = (now - self._speed.since) / done_since if done_since > 0 else None
        return {
            "names": self.names,
            "listed": listed,
            "rendered": rendered,
            "left": left,
            "seconds_per_reply": None if per_reply is None else round(per_reply, 1),
            "eta_seconds": None if per_reply is None else round(per_reply * left),
            "templates_skipped": self.failed,
        }

    def _rendered(self) -> int:
        cache = self.synthesizer.cache
        if cache is None:
            return 0
        return sum(all(key in cache for key in keys) for entry in self._listed for keys in entry.keys)
