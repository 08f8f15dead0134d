"""Text cut into pieces the gateway speaks whole (it silently truncates beyond 300 characters)."""

from __future__ import annotations

import re

from .settings import MAX_TEXT_CHARS

# Sentence ends: CJK terminators need no space after them; an ASCII period only counts before
# whitespace or the end (so "3.14" and "e.g.x" stay whole). Closing quotes and brackets stay with
# their sentence, and trailing whitespace is attached to the piece before it.
_SENTENCE_END = re.compile(
    r"(?:[。！？；!?;…]+|\.(?=\s|$))[\"'”’」』）)\]]*\s*|\n\s*"
)
# Clause ends: CJK commas and colons always; ASCII ones only before whitespace ("1,000" stays).
_CLAUSE_END = re.compile(r"(?:[，、：]+|[,:](?=\s))[\"'”’」』）)\]]*\s*|\s+[—–]+\s*")
_WORD_END = re.compile(r"\s+")


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Cut text into pieces of at most `limit` characters whose concatenation is `text`.

    Prefers sentence ends, then clause ends, then spaces between words; only a run longer than
    `limit` with none of those (CJK without punctuation, a very long word) is cut mid-run.
    Pieces are packed greedily so long text needs as few requests as possible.
    """
    if len(text) <= limit:
        return [text] if text else []
    return _pack(text, limit, (_SENTENCE_END, _CLAUSE_END, _WORD_END))


def _pack(text: str, limit: int, levels: tuple[re.Pattern[str], ...]) -> list[str]:
    if len(text) <= limit:
        return [text]
    if not levels:
        return [text[i:i + limit] for i in range(0, len(text), limit)]
    units = _units(text, levels[0])
    pieces: list[str] = []
    current = ""
    for unit in units:
        if len(unit) > limit:
            if current:
                pieces.append(current)
                current = ""
            sub = _pack(unit, limit, levels[1:])
            pieces.extend(sub[:-1])
            current = sub[-1]  # the tail may still share a piece with what follows
        elif len(current) + len(unit) <= limit:
            current += unit
        else:
            pieces.append(current)
            current = unit
    if current:
        pieces.append(current)
    return pieces


def _units(text: str, boundary: re.Pattern[str]) -> list[str]:
    units = []
    start = 0
    for match in boundary.finditer(text):
        if match.end() > start:
            units.append(text[start:match.end()])
            start = match.end()
    if start < len(text):
        units.append(text[start:])
    return units
