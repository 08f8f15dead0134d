"""The wetext wrapper (`wyoming_indextts.text.normalize`): the corpus the hand-written
normaliser was replaced on, and each place where we read differently from plain wetext.

tests/data/normalizer_readings.json holds the 107 reading cases the old hand-written
IndexTTS normaliser was tested on (its readings frozen in `old` before it was deleted),
wetext 0.1.8's plain reading, and ours. Every difference from the old reading is either
accepted (WeTextProcessing's reading is taken; `note` says why) or fixed (our rewrite around
wetext, shown by a test below).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from wetext import Normalizer

from wyoming_indextts.engines.indextts.text import normalize as frontend_normalize
from wyoming_indextts.text import normalize

READINGS = json.loads((Path(__file__).parent / "data" / "normalizer_readings.json").read_text(encoding="utf-8"))
PLAIN = {
    "zh": Normalizer(lang="zh", operator="tn", traditional_to_simple=True, full_to_half=True),
    "en": Normalizer(lang="en", operator="tn"),
}


def _plain(text: str, lang: str) -> str:
    try:
        return PLAIN[lang].normalize(text)
    except Exception:  # noqa: BLE001 - recorded as such
        return "RAISES"


@pytest.mark.parametrize("case", READINGS, ids=[r["text"] for r in READINGS])
def test_every_difference_from_the_old_normaliser_is_accepted_or_fixed(case: dict[str, str]) -> None:
    assert frontend_normalize(case["text"]) == case["reading"]
    assert _plain(case["text"], case["lang"]) == case["wetext"], "wetext reads differently: re-check the verdicts"
    if case["verdict"] == "same":
        assert case["reading"] == case["old"] == case["wetext"]
    elif case["verdict"] == "accepted":
        assert case["reading"] == case["wetext"] != case["old"] and case["note"]
    else:
        assert case["verdict"] == "fixed" and case["reading"] != case["wetext"] and case["note"]


def test_the_corpus_is_the_whole_old_one() -> None:
    verdicts = [r["verdict"] for r in READINGS]
    assert len(READINGS) == 107
    assert (verdicts.count("same"), verdicts.count("accepted"), verdicts.count("fixed")) == (67, 28, 12)


# Each rewrite around wetext: plain wetext reads the text wrong, ours right.
@pytest.mark.parametrize(
    ("text", "lang", "ours"),
    [
        ("1,234,567", "zh", "一百二十三万四千五百六十七"),  # zh.THOUSANDS_SEPARATOR
        ("1,500", "zh", "一千五百"),
        ("2点见", "zh", "两点见"),  # zh.TWO_OCLOCK
        ("第2个", "zh", "第二个"),  # zh.ORDINAL_TWO
        ("It costs $5.99", "en", "It costs five dollars ninety nine cents"),  # en.DOLLARS_AND_CENTS
        ("just $0.50", "en", "just fifty cents"),
        ("$12.50 each", "en", "twelve dollars fifty cents each"),
        ("$1.01", "en", "one dollar one cent"),
        ("1,000 people", "en", "one thousand people"),  # en.ONE_THOUSAND
        ("1,500 people", "en", "one thousand five hundred people"),
        ("the 1990s", "en", "the nineteen nineties"),  # en.DECADE
        ('say "hi" 5 times', "en", 'say "hi" five times'),  # wetext's escaped quotes
        ("hello 😀 world ✨ 5", "en", "hello world five"),  # pictographs
    ],
)
def test_rewrites_around_wetext(text: str, lang: str, ours: str) -> None:
    assert _plain(text, lang) != ours
    assert normalize(text, lang) == ours


@pytest.mark.parametrize(
    ("text", "lang", "ours"),
    [
        ("$1.5 million", "en", "one point five million dollars"),  # no cents: wetext's own
        ("The party's over", "en", "The party's over"),  # not a decade
        ("2.5点", "zh", "二点五点"),  # a decimal is no hour
        ("12,34", "zh", "十二,三十四"),  # no thousands group
    ],
)
def test_rewrites_leave_other_text_to_wetext(text: str, lang: str, ours: str) -> None:
    assert normalize(text, lang) == ours == _plain(text, lang)


def test_a_clause_wetext_refuses_does_not_leave_the_others_unread() -> None:
    # wetext's English grammar refuses the whole text for one CJK character in it; plain
    # wetext (and the official frontend) would then keep every digit unread
    text = "It is 12 degrees, room 𣁡3 is at 40%."
    assert _plain(text, "en") == "RAISES"
    assert normalize(text, "en") == "It is twelve degrees, room 𣁡 three is at forty percent."


def test_digits_of_any_script_are_read() -> None:
    assert normalize("٣ and ３", "en") == "three and three"
    assert normalize("共１２３个", "zh") == "共一百二十三个"


def test_japanese_has_its_grammar() -> None:
    assert normalize("今日は2024年3月5日です。", "ja") == "今日は二千二十四年三月五日です。"


def test_unknown_language_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="zh, en, ja"):
        normalize("hola 5", "es")


def test_threads_share_the_normalisers() -> None:
    texts = [("今天25°C", "zh", "今天二十五摄氏度"), ("It is 12°C", "en", "It is twelve degrees Celsius")] * 20
    results: list[bool] = []

    def work(text: str, lang: str, expected: str) -> None:
        results.append(normalize(text, lang) == expected)

    threads = [threading.Thread(target=work, args=case) for case in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * len(texts)
