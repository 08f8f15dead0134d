"""WeTextProcessing's grammars (wetext) behind `normalize`: one normaliser per language, built
on first use, shared by threads."""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from types import ModuleType

from wetext import Normalizer

from . import en, zh

log = logging.getLogger(__name__)

LANGUAGES = ("zh", "en", "ja")

# Options as WeTextProcessing's own Chinese normaliser has them by default (the official
# IndexTTS frontend runs it so on Linux): traditional characters and fullwidth forms folded.
# Erhua and interjections are kept: they are spoken.
_OPTIONS: dict[str, dict[str, object]] = {
    "zh": {"traditional_to_simple": True, "full_to_half": True},
    "en": {},
    "ja": {},
}
_FIXES: dict[str, ModuleType | None] = {"zh": zh, "en": en, "ja": None}

# wetext's verbaliser escapes quotes and backslashes in what it passes through ("say \\"hi\\"").
_ESCAPED = re.compile(r'\\(["\\])')

# Where a grammar refuses a whole text, its clauses and words are tried one by one.
_PIECES = re.compile(r"(\s+|(?<=[,;!?。，；！？、]))")
_RUNS = re.compile(r"([0-9]+|[^\x00-\x7f]+)")

_normalizers: dict[str, Normalizer] = {}
# wetext keeps its compiled grammars in module caches that are not documented as safe to
# build from two threads at once; a sentence takes a few ms, so one at a time is cheap.
_lock = threading.Lock()


def _normalizer(lang: str) -> Normalizer:
    if lang not in _normalizers:
        _normalizers[lang] = Normalizer(lang=lang, operator="tn", **_OPTIONS[lang])
    return _normalizers[lang]


def _fold_char(ch: str) -> str:
    """Digits of any script become ASCII digits (the grammars read only those); format and
    private-use characters (zero-width joiners, variation selectors...) go."""
    category = unicodedata.category(ch)
    if category == "Nd":
        return str(unicodedata.decimal(ch))
    if category in ("Cf", "Co", "Cn", "Cs"):
        return ""
    return ch


def _is_pictograph(ch: str) -> bool:
    """Emoji and other symbols no voice can say: the tokenizers have no pieces for them, and
    WeTextProcessing passes them through."""
    return unicodedata.category(ch) in ("So", "Me") or "\ufe00" <= ch <= "\ufe0f"


def _wetext(text: str, lang: str) -> str | None:
    try:
        with _lock:
            return _ESCAPED.sub(r"\1", _normalizer(lang).normalize(text))
    except Exception:  # noqa: BLE001 - wetext raises bare RuntimeErrors and AssertionErrors
        return None


def _written_out(text: str, lang: str) -> str:
    """wetext's reading; where its grammar finds no path for the whole text, each clause and
    word on its own, then each run of digits, of other ASCII and of other scripts in a word
    (one odd word must not leave the others' numbers unread). What it still refuses stays
    as written, as the official frontend keeps the raw text."""
    whole = _wetext(text, lang)
    if whole is not None:
        return whole
    log.debug("wetext (%s) found no reading for %r; read piece by piece", lang, text)
    return "".join(_piece_written_out(piece, lang) for piece in _PIECES.split(text) if piece)


def _piece_written_out(piece: str, lang: str) -> str:
    if piece.isspace():
        return piece
    whole = _wetext(piece, lang)
    if whole is not None:
        return whole
    parts = [part for part in _RUNS.split(piece) if part]
    return " ".join(_wetext(part, lang) or part for part in parts) if len(parts) > 1 else piece


def normalize(text: str, lang: str) -> str:
    """Numbers, dates, times, units, money and symbols written out in `lang` ("zh", "en" or
    "ja"), pictographs dropped.

    Never raises on text: where a grammar finds no path (wetext's English grammar refuses
    Chinese characters), the text comes back as it was, as the official frontend does.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"No text normaliser for language {lang!r}: use one of {', '.join(LANGUAGES)}")
    fixes = _FIXES[lang]
    text = "".join(_fold_char(ch) for ch in text)
    if fixes is not None:
        text = fixes.before(text)
    text = _written_out(text, lang)
    if fixes is not None:
        text = fixes.after(text)
    return " ".join("".join(" " if _is_pictograph(ch) else ch for ch in text).split())

