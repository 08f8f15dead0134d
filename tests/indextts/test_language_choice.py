"""Which language a sentence is read in: a forced language holds on text with only digits and
units, and IndexTTS-2.5 reads Japanese as Japanese when it has kanji as well as kana."""

from __future__ import annotations

import pytest

from wyoming_indextts.engines.indextts.text.frontend25 import Frontend25
from wyoming_indextts.engines.indextts.text.frontend import TextFrontend

# Digits and units carry no letter: left alone, the official rule reads "2024" in Chinese.
FORCED_EN = {
    "2024": "twenty twenty four",
    "25°C": "twenty five degrees Celsius",
    "2024, 25°C.": "twenty twenty four, twenty five degrees Celsius.",
}
FORCED_ZH = {
    "25°C": "二十五摄氏度",
    "3.5 kg": "三点五千克",
}


def frontend(language: str | None) -> TextFrontend:
    return TextFrontend(sp=None, language=language)  # type: ignore[arg-type]  # normalising needs no BPE model


@pytest.mark.parametrize(("text", "expected"), FORCED_EN.items())
def test_a_voice_forced_to_english_reads_digits_and_units_in_english(text, expected):
    assert frontend("en").normalize(text) == expected
    assert frontend(None).normalize("2024") == "两千零二十四"  # what forcing must override


@pytest.mark.parametrize(("text", "expected"), FORCED_ZH.items())
def test_a_voice_forced_to_chinese_reads_digits_and_units_in_chinese(text, expected):
    assert frontend("zh").normalize(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "東京へ行きます。",  # kanji first, then kana
        "今日は雨です",
        "電気を消しました",
    ],
)
def test_indextts25_reads_japanese_with_kanji_and_kana_as_japanese(text):
    assert Frontend25(frontend=None, capacity=100).language_for(text, ("zh", "en")) == "ja"  # type: ignore[arg-type]


def test_indextts25_reads_han_alone_as_chinese_and_a_forced_language_wins():
    assert Frontend25(frontend=None, capacity=100).language_for("客厅的灯已关闭", ("en",)) == "zh"  # type: ignore[arg-type]
    forced = Frontend25(frontend=None, capacity=100, language="en")  # type: ignore[arg-type]
    assert forced.language_for("2024", ("zh",)) == "en"
    assert forced.language_for("東京へ行きます", ("zh",)) == "en"
