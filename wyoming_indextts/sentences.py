"""Cut text that arrives in arbitrary pieces into units worth synthesising on their own.

A unit is a sentence; the first unit of a response may be only the first clause of a long
sentence, so the listener hears something sooner; a unit longer than the engines like is cut
at a clause boundary or a space. Chinese and English punctuation both count.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SENTENCE_ENDS = ".!?…。！？"
CJK_SENTENCE_ENDS = "。！？"
CLAUSE_MARKS = ",;:—–，、；："
CJK_CLAUSE_MARKS = "，、；："
CLOSERS = "\"'”’)]）】」』»"

# Titles end in a period but never a sentence ("Dr. Smith").
TITLES = frozenset("mr mrs ms dr prof st sr jr mt ft no fig vs".split())
# These may end a sentence or not: the next word decides ("3 p.m. on Sunday" / "3 p.m. Then").
AMBIGUOUS = frozenset("a.m p.m etc e.g i.e approx dept est inc ltd co corp".split())

_WHITESPACE = re.compile(r"\s+")


def normalize_sentence(text: str) -> str:
    """The canonical form of a unit: what the cache keys on and what engines receive."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" or "\u3040" <= char <= "\u30ff"


def spoken_weight(text: str) -> int:
    """Rough length in speech: a CJK character is a syllable, about three Latin letters."""
    return sum(3 if is_cjk(char) else 1 for char in text)


def has_speakable(text: str) -> bool:
    """True when the text has a letter or digit in any script (not only punctuation or emoji)."""
    return any(unicodedata.category(char)[0] in "LN" for char in text)


@dataclass
class SplitterSettings:
    first_clause_weight: int = 24
    """The first unit of a response ends at a clause mark once it is at least this long
    (CJK characters count three); 0 turns the early first clause off."""

    max_unit_weight: int = 300
    """Longer units are cut at the last clause mark or space before this weight."""


class SentenceSplitter:
    """Feed text as it arrives with `add`; `finish` returns whatever is left.

    A sentence mark ends a sentence once a space follows it ("3.5" and "example.com" stay
    whole); after a title ("Dr.") it never does, and after "p.m." or "etc." the next word
    decides, which is the only case that waits for more text.
    """

    def __init__(self, settings: SplitterSettings | None = None) -> None:
        self.settings = settings or SplitterSettings()
        self._buffer = ""
        self._units_sent = 0

    def add(self, text: str) -> list[str]:
        self._buffer += text
        units: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            units.extend(self._emit(self._buffer[:cut]))
            self._buffer = self._buffer[cut:]
        return units

    def finish(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return self._emit(rest)

    def _emit(self, text: str) -> list[str]:
        pieces = [normalize_sentence(piece) for piece in self._cut_long(text)]
        pieces = [piece for piece in pieces if piece]
        self._units_sent += len(pieces)
        return pieces

    def _find_cut(self) -> int | None:
        """Index just past the end of the first complete unit in the buffer, if any."""
        buffer = self._buffer
        first_unit = self._units_sent == 0 and self.settings.first_clause_weight > 0
        for index, char in enumerate(buffer):
            if char in SENTENCE_ENDS:
                end = self._sentence_end(buffer, index)
                if end is not None:
                    return end
            elif first_unit and char in CLAUSE_MARKS:
                end = self._clause_end(buffer, index)
                if end is not None and spoken_weight(buffer[:end].strip()) >= self.settings.first_clause_weight:
                    return end
        if spoken_weight(buffer) > self.settings.max_unit_weight * 2:
            # A stream with no punctuation at all: don't hold audio back forever.
            return len(self._cut_long(buffer)[0])
        return None

    @staticmethod
    def _skip_closers(buffer: str, index: int) -> int:
        while index < len(buffer) and buffer[index] in CLOSERS:
            index += 1
        return index

    def _sentence_end(self, buffer: str, index: int) -> int | None:
        char = buffer[index]
        after = self._skip_closers(buffer, index + 1)
        if char in CJK_SENTENCE_ENDS:
            return after
        if after < len(buffer) and buffer[after] in SENTENCE_ENDS:
            return None  # "?!" or "...": the run of marks is not over yet
        if after >= len(buffer):
            return None  # wait for what follows
        following = buffer[after]
        if is_cjk(following):
            return after
        if not following.isspace():
            return None  # "3.5", "e.g.", "example.com"
        if char != ".":
            return after
        word = re.split(r"[\s(\"']", buffer[:index])[-1].lower()
        if word in TITLES or (len(word) == 1 and word.isalpha()):
            return None  # "Dr. Smith", an initial as in "J. Smith"
        if word not in AMBIGUOUS:
            return after  # an ordinary word: cut now, no need to wait for the next one
        rest = buffer[after:].lstrip()
        if not rest:
            return None  # need the next word to decide
        return None if rest[0].islower() else after

    def _clause_end(self, buffer: str, index: int) -> int | None:
        after = self._skip_closers(buffer, index + 1)
        if buffer[index] in CJK_CLAUSE_MARKS:
            return after
        if after >= len(buffer):
            return None
        # "6:30" and "1,000" are not clause marks; a clause mark is followed by a space.
        return after if buffer[after].isspace() else None

    def _cut_long(self, text: str) -> list[str]:
        """Cut a unit heavier than the limit at its last clause mark, else its last space."""
        limit = self.settings.max_unit_weight
        pieces: list[str] = []
        while spoken_weight(text) > limit:
            weight, cut = 0, 0
            best_clause, best_space = 0, 0
            for index, char in enumerate(text):
                weight += 3 if is_cjk(char) else 1
                if weight > limit:
                    break
                cut = index + 1
                if char in CLAUSE_MARKS or char in SENTENCE_ENDS:
                    best_clause = index + 1
                elif char.isspace():
                    best_space = index + 1
            cut = best_clause or best_space or cut
            pieces.append(text[:cut])
            text = text[cut:]
        pieces.append(text)
        return pieces
