"""Sentence and clause boundaries for text that arrives in arbitrary pieces."""

from __future__ import annotations

import random

import pytest

from wyoming_indextts.sentences import SentenceSplitter, SplitterSettings, has_speakable, spoken_weight

from .conftest import SHARED

ALL_TEXTS = [
    line
    for name in ("announcements_en.txt", "replies_en.txt", "zh.txt")
    for line in (SHARED / "texts" / name).read_text(encoding="utf-8").splitlines()
    if line.strip()
]


def split(text: str, piece: int | None = None, **settings) -> list[str]:
    splitter = SentenceSplitter(SplitterSettings(**settings))
    if piece is None:
        return splitter.add(text) + splitter.finish()
    units: list[str] = []
    for start in range(0, len(text), piece):
        units += splitter.add(text[start : start + piece])
    return units + splitter.finish()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sure. I've turned on the lights.", ["Sure.", "I've turned on the lights."]),
        ("It is 3.5 degrees. Cold!", ["It is 3.5 degrees.", "Cold!"]),
        ("See you at 3:15 p.m. on Thursday. Bye.", ["See you at 3:15 p.m. on Thursday.", "Bye."]),
        ("Dr. Smith called. Call back?", ["Dr. Smith called.", "Call back?"]),
        ("Really?! Yes... I think so.", ["Really?!", "Yes...", "I think so."]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("门口有人按门铃。请注意查看！", ["门口有人按门铃。", "请注意查看！"]),
        ("Your package has arrived. 快递已经放在门口了。", ["Your package has arrived.", "快递已经放在门口了。"]),
        ("It costs $1,000.50 today.", ["It costs $1,000.50 today."]),
    ],
)
def test_sentence_boundaries(text, expected):
    assert split(text, first_clause_weight=0) == expected


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 7, 13])
def test_any_chunking_gives_the_same_units_as_whole_text(piece):
    for text in ALL_TEXTS:
        assert split(text, piece) == split(text), text


def test_random_chunking_never_loses_or_duplicates_text():
    rng = random.Random(7)
    text = " ".join(ALL_TEXTS)
    for _ in range(30):
        splitter = SentenceSplitter()
        units: list[str] = []
        position = 0
        while position < len(text):
            step = rng.randint(1, 20)
            units += splitter.add(text[position : position + step])
            position += step
        units += splitter.finish()
        assert "".join(units).replace(" ", "") == text.replace(" ", "")


def test_first_unit_is_the_first_clause_of_a_long_sentence_only():
    text = "The garage door has been open for ten minutes, and the porch light is on. Bye, now."
    units = split(text)
    assert units == [
        "The garage door has been open for ten minutes,",
        "and the porch light is on.",
        "Bye, now.",
    ]
    # A short opening clause is not worth a unit of its own.
    assert split("Sure, done. Next.") == ["Sure, done.", "Next."]
    # Chinese clause marks count; a CJK character weighs like three letters.
    assert split("今天北京晴朗无风，最高气温二十五度。") == ["今天北京晴朗无风，", "最高气温二十五度。"]
    # Times and thousands are not clauses.
    assert split("Good morning at 6:30 and 1,000 degrees outside today.") == [
        "Good morning at 6:30 and 1,000 degrees outside today."
    ]


def test_long_units_are_cut_at_clauses_then_spaces_within_the_limit():
    clauses = ", ".join(f"clause number {n} goes here" for n in range(40)) + "."
    units = split(clauses, max_unit_weight=120, first_clause_weight=0)
    assert all(spoken_weight(unit) <= 120 for unit in units)
    assert all(unit.endswith((",", ".")) for unit in units)
    words = "word " * 500
    units = split(words, 9, max_unit_weight=100)
    assert all(spoken_weight(unit) <= 100 for unit in units)
    assert " ".join(units).split() == words.split()
    cjk = "家" * 1000
    units = split(cjk, max_unit_weight=90)
    assert all(len(unit) <= 30 for unit in units) and "".join(units) == cjk


def test_speakable_text_needs_a_letter_or_digit():
    assert has_speakable("Hi") and has_speakable("好") and has_speakable("42")
    assert not has_speakable("") and not has_speakable(" \n ") and not has_speakable("🎉?!…")


def test_a_sentence_is_cut_as_soon_as_its_space_arrives():
    splitter = SentenceSplitter(SplitterSettings(first_clause_weight=0))
    assert splitter.add("The dishwasher is done. ") == ["The dishwasher is done."]
    assert splitter.add("See you at 3 p.m. ") == []  # the next word decides
    assert splitter.add("on Sunday. Call Dr. ") == ["See you at 3 p.m. on Sunday."]
    assert splitter.add("Smith! ") == ["Call Dr. Smith!"]
