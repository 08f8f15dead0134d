"""Cut text that arrives in arbitrary pieces into units worth synthesising on their own.

A unit is a sentence; the first unit of a response may be only the first clause of a long
sentence, so the listener hears something sooner; a unit longer than the engines like is cut
at a clause boundary or a space. Chinese and English punctuation both count.
"""

from __future__ import annotations

import asyncio
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
# Lone surrogates (from JSON escapes like "\ud800") cannot be encoded or spoken; control
# characters say nothing either, and NUL makes the phonemizer raise. Whitespace controls stay.
UNSPEAKABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_sentence(text: str) -> str:
    """The canonical form of a unit: what the cache keys on and what engines receive."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", UNSPEAKABLE.sub("", text))).strip()


def is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" or "\u3040" <= char <= "\u30ff"


def char_weight(char: str) -> int:
    """Rough length in speech of one character, in Latin letters: a CJK character is a
    syllable (about three letters); a digit is read as a word ("2024", "twenty twenty-four"),
    so a line of digits is bounded by the audio it makes, not by its characters."""
    if is_cjk(char):
        return 3
    if char.isdigit():
        return 4
    return 1


def spoken_weight(text: str) -> int:
    """Rough length of a text in speech (see `char_weight`)."""
    return sum(char_weight(char) for char in text)


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


class _Wait:
    """A mark whose meaning depends on text that has not arrived yet."""


WAIT = _Wait()
# Longest word a title or abbreviation check looks back for ("approx" is the longest).
_WORD_LOOKBACK = 16


class SentenceSplitter:
    """Feed text as it arrives with `add`; `finish` returns whatever is left.

    A sentence mark ends a sentence once a space follows it ("3.5" and "example.com" stay
    whole); after a title ("Dr.") it never does, and after "p.m." or "etc." the next word
    decides, which is the only case that waits for more text.

    Linear time in the text, however it arrives: each character is looked at a bounded number
    of times (the scan resumes where the last `add` stopped, a cut never copies the rest of the
    buffer, and no check looks further back than a word), because the handler may be given a
    megabyte of text without one sentence mark.
    """

    def __init__(self, settings: SplitterSettings | None = None) -> None:
        self.settings = settings or SplitterSettings()
        self._buffer = ""
        self._units_sent = 0
        self._scan = 0
        """Buffer positions before this were looked at and end no unit."""
        self._weight = 0
        """Spoken weight of the buffer before `_scan`, leading whitespace not counted."""

    def add(self, text: str) -> list[str]:
        self._buffer += text
        units: list[str] = []
        start = 0
        while (cut := self._find_cut(start)) is not None:
            units.extend(self._emit(self._buffer[start:cut]))
            start = self._scan = cut
            self._weight = 0
        self._buffer = self._buffer[start:]
        self._scan -= start
        return units

    def finish(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        self._scan = self._weight = 0
        return self._emit(rest)

    def _emit(self, text: str) -> list[str]:
        pieces = [normalize_sentence(piece) for piece in self._cut_long(text)]
        pieces = [piece for piece in pieces if piece]
        self._units_sent += len(pieces)
        return pieces

    def _find_cut(self, start: int) -> int | None:
        """Index just past the end of the first complete unit at or after `start`, if any."""
        buffer = self._buffer
        first_unit = self._units_sent == 0 and self.settings.first_clause_weight > 0
        index, weight = max(self._scan, start), self._weight
        while index < len(buffer):
            char = buffer[index]
            if char in SENTENCE_ENDS:
                end = self._sentence_end(buffer, start, index)
                if end is WAIT:
                    break
                if end is not None:
                    return end
            elif first_unit and char in CLAUSE_MARKS:
                end = self._clause_end(buffer, index)
                if end is WAIT:
                    break
                if end is not None:
                    # The clause with its closing quotes or brackets (weight one each).
                    if weight + char_weight(char) + end - index - 1 >= self.settings.first_clause_weight:
                        return end
                    if end == len(buffer):
                        break  # more closing marks may follow and make it long enough
            if weight or not char.isspace():
                weight += char_weight(char)
            index += 1
            if weight > self.settings.max_unit_weight * 2:
                # A stream with no punctuation at all: don't hold audio back forever.
                return self._first_piece_end(buffer, start)
        self._scan, self._weight = index, weight
        return None

    @staticmethod
    def _skip_closers(buffer: str, index: int) -> int:
        while index < len(buffer) and buffer[index] in CLOSERS:
            index += 1
        return index

    @staticmethod
    def _word_before(buffer: str, unit_start: int, index: int) -> str:
        start = index
        while (
            start > unit_start
            and index - start < _WORD_LOOKBACK
            and not (buffer[start - 1].isspace() or buffer[start - 1] in "(\"'")
        ):
            start -= 1
        return buffer[start:index].lower()

    def _sentence_end(self, buffer: str, unit_start: int, index: int) -> int | None | _Wait:
        char = buffer[index]
        after = self._skip_closers(buffer, index + 1)
        if char in CJK_SENTENCE_ENDS:
            return after
        if after < len(buffer) and buffer[after] in SENTENCE_ENDS:
            return None  # "?!" or "...": the run of marks is not over yet
        if after >= len(buffer):
            return WAIT  # wait for what follows
        following = buffer[after]
        if is_cjk(following):
            return after
        if not following.isspace():
            return None  # "3.5", "e.g.", "example.com"
        if char != ".":
            return after
        word = self._word_before(buffer, unit_start, index)
        if word in TITLES or (len(word) == 1 and word.isalpha()):
            return None  # "Dr. Smith", an initial as in "J. Smith"
        if word not in AMBIGUOUS:
            return after  # an ordinary word: cut now, no need to wait for the next one
        next_word = after
        while next_word < len(buffer) and buffer[next_word].isspace():
            next_word += 1
        if next_word == len(buffer):
            return WAIT  # need the next word to decide
        return None if buffer[next_word].islower() else after

    def _clause_end(self, buffer: str, index: int) -> int | None | _Wait:
        after = self._skip_closers(buffer, index + 1)
        if buffer[index] in CJK_CLAUSE_MARKS:
            return after
        if after >= len(buffer):
            return WAIT
        # "6:30" and "1,000" are not clause marks; a clause mark is followed by a space.
        return after if buffer[after].isspace() else None

    def _cut_long(self, text: str) -> list[str]:
        """Cut a unit heavier than the limit at its last clause mark, else its last space."""
        pieces: list[str] = []
        start = 0
        while (end := self._first_piece_end(text, start)) < len(text):
            pieces.append(text[start:end])
            start = end
        pieces.append(text[start:])
        return pieces

    def _first_piece_end(self, text: str, start: int) -> int:
        """End of the first piece of `text[start:]` within the weight limit: the whole rest
        when it fits, else up to its last clause mark, else its last space, else a hard cut.
        Looks at no more characters than the limit allows, so cutting is linear overall."""
        limit = self.settings.max_unit_weight
        weight, index = 0, start
        best_clause = best_space = start
        while index < len(text):
            char = text[index]
            weight += char_weight(char)
            if weight > limit:
                break
            index += 1
            if char in CLAUSE_MARKS or char in SENTENCE_ENDS:
                best_clause = index
            elif char.isspace():
                best_space = index
        else:
            return len(text)
        for cut in (best_clause, best_space, index):
            if cut > start:
                return cut
        return start + 1  # one character heavier than the whole limit


# Text longer than this is split in a worker thread, so the event loop keeps answering others.
SPLIT_OFF_LOOP_CHARS = 4096


async def split_units(splitter: SentenceSplitter, text: str, finish: bool = False) -> list[str]:
    """The units `text` completes (all that is left too, with `finish`); long text is split in
    a worker thread. The caller must not use the splitter until this returns."""

    def split() -> list[str]:
        units = splitter.add(text)
        return [*units, *splitter.finish()] if finish else units

    if len(text) > SPLIT_OFF_LOOP_CHARS:
        return await asyncio.to_thread(split)
    return split()
