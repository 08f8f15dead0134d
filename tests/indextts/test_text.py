"""Text frontend: parity with the official IndexTTS2 tokenizer/segmenter, and our normaliser.

A tiny sentencepiece BPE is trained here (upper-case English + CJK, like the official
bpe.model), so the official `TextTokenizer` and ours can be compared token for token
without any downloaded model.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import random
import re
import subprocess
import sys
import types
import unicodedata
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sentencepiece as spm

from wyoming_indextts.engines.indextts.text import official as frontend_text
from wyoming_indextts.engines.indextts.text import (
    CHAR_REP_MAP,
    ZH_CHAR_REP_MAP,
    NoSpeakableTextError,
    TextFrontend,
    normalize,
    split_segments,
)

from wyoming_indextts.text import normalize as written_out

from tests.conftest import SHARED

SHARED_TEXTS = SHARED / "texts"
REPO_ROOT = Path(__file__).resolve().parents[2]
READINGS = json.loads((REPO_ROOT / "tests" / "data" / "normalizer_readings.json").read_text(encoding="utf-8"))


def _official_front() -> ModuleType:
    """`indextts.utils.front` without running the package __init__ (it imports infer_v2,
    which needs torchaudio). The stub parent is removed again so nothing else sees it."""
    try:
        return importlib.import_module("indextts.utils.front")
    except ModuleNotFoundError:
        pass
    spec = importlib.util.find_spec("indextts")
    assert spec is not None and spec.submodule_search_locations, "indextts2-inference is not installed"
    stub = types.ModuleType("indextts")
    stub.__path__ = list(spec.submodule_search_locations)
    sys.modules["indextts"] = stub
    try:
        return importlib.import_module("indextts.utils.front")
    finally:
        if sys.modules.get("indextts") is stub:
            del sys.modules["indextts"]


OFFICIAL = _official_front()


# --------------------------------------------------------------------------------------
# A tiny BPE model in the image of the official one
# --------------------------------------------------------------------------------------

EN_LINES = """\
The dishwasher is done and the kitchen lights are off.
Someone is at the front door, please check the camera.
It is twenty five degrees outside and the sky is clear.
Good morning! The weather today is sunny with a light breeze.
Your package has arrived; it is waiting by the garage.
Do you want me to turn on the living room lights?
The timer finished three minutes ago.
I couldn't find a device called 'porch fan'.
Tomorrow will be mostly cloudy with a high of eighteen degrees.
There is a thirty percent chance of showers in the afternoon.
Traffic looks light, so leaving now should get you there on time.
The washing machine has finished, please hang the clothes.
Motion detected in the backyard at six thirty PM.
The thermostat is set to twenty one degrees Celsius.
Battery level is low: fifteen percent remaining.
Meeting with Doctor Smith at three fifteen PM on Thursday.
The front door is locked - the back door is open.
Play some jazz music in the kitchen, please.
What is the time? It is seven o'clock.
One hundred twenty three thousand four hundred fifty six.
First, second, third, fourth, fifth, sixth, seventh, eighth, ninth, tenth.
Zero one two three four five six seven eight nine ten eleven twelve.
Thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty.
Thirty forty fifty sixty seventy eighty ninety hundred thousand million.
It costs five dollars and ninety nine cents.
The temperature dropped to minus five degrees Fahrenheit.
She said "hello" and left... then came back.
Numbers: point five, one half, three quarters, two thirds.
Nineteen ninety nine was a good year, and so was twenty twenty four.
Set an alarm for six AM tomorrow, and another for seven AM.
The route is twelve kilometers long and takes forty minutes.
Call five five five, one two three, four five six seven.
Email john dot doe at example dot com for help.
GPT-five and F five-TTS are models; CosyVoice-two too.
Really? Yes! Of course. Why not?
The kids' bedroom window is open and it is raining.
""".splitlines()

ZH_LINES = """\
欢迎回家，客厅的灯已经为您打开。
今天北京晴，最高气温二十五度，最低气温十三度。
洗衣机已经洗好了，请及时晾晒衣服。
门口有人按门铃，请注意查看。
快递已经放在门口了，请尽快取回。
现在是早上六点三十分，该起床了。
明天下午三点十五分有一个会议。
空调已经调到二十六摄氏度。
电量只剩百分之十五，请及时充电。
二零二四年五月一日是劳动节。
您的电话号码是一三八一二三四五六七八。
这件衣服的价格是九十九点九元。
今天走了一万两千三百四十五步。
第一、第二、第三名都有奖励。
零一二三四五六七八九十百千万亿。
两个人，三只猫，四本书，五辆车。
请问现在几点了？已经晚上八点了！
他说：“我们明天见。”然后就走了……
《三体》是一本很好看的小说。
克里斯托弗-诺兰是一位导演。
温度降到了负五度，注意保暖。
从北京到上海大约一千二百公里。
这台电脑有十六G内存和五百一十二G硬盘。
卧室的窗户开着，外面在下雨。
垃圾桶满了，请记得倒垃圾。
厨房的水龙头没有关好。
音乐已经暂停，需要继续播放吗？
已为您设置明天早上七点的闹钟。
XVAN4 是拼音，JV4 也是。
请把音量调到百分之四十。
""".splitlines()


def _training_lines() -> list[str]:
    """A few hundred lines: the sentences above, pairs of them, zh/en mixes; pre-split the
    way the official tokenizer feeds its BPE (CJK apart, upper case)."""
    rng = random.Random(7)
    lines = EN_LINES + ZH_LINES
    for _ in range(300):
        a, b = rng.choice(EN_LINES + ZH_LINES), rng.choice(EN_LINES + ZH_LINES)
        lines.append(f"{a} {b}")
    return [OFFICIAL.tokenize_by_CJK_char(line) for line in lines]


@pytest.fixture(scope="module")
def bpe_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_training_lines()),
        model_writer=model,
        model_type="bpe",
        vocab_size=700,
        hard_vocab_limit=False,
        character_coverage=1.0,
        bos_id=0,
        eos_id=1,
        unk_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    path = tmp_path_factory.mktemp("bpe") / "bpe.model"
    path.write_bytes(model.getvalue())
    return path


@pytest.fixture(scope="module")
def frontend(bpe_model: Path) -> TextFrontend:
    return TextFrontend.load(bpe_model)


class _Wetext:
    """Stands where the official frontend keeps its per-language normaliser (nemo, which
    needs pynini): WeTextProcessing's grammars, as `wyoming_indextts.text` runs them. The
    official class then does its own wrapping around them (contractions, tech terms, pinyin,
    names, punctuation map), so comparing with it checks our port of that wrapping."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def normalize(self, text: str, verbose: bool = False) -> str:
        return written_out(text, self.lang)


@pytest.fixture(scope="module")
def official_normalizer() -> Any:
    normalizer = OFFICIAL.TextNormalizer()
    normalizer._normalizers = {"zh": _Wetext("zh"), "en": _Wetext("en")}
    return normalizer


@pytest.fixture(scope="module")
def official_tokenizer(bpe_model: Path, official_normalizer: Any) -> Any:
    return OFFICIAL.TextTokenizer(str(bpe_model), normalizer=official_normalizer)


def _shared_texts() -> list[str]:
    texts: list[str] = []
    for path in sorted(SHARED_TEXTS.glob("*.txt")):
        content = path.read_text(encoding="utf-8")
        texts.append(content)  # the whole file: long, multi-line, multi-sentence
        texts += [line for line in content.splitlines() if line.strip()]
    return texts


PARITY_TEXTS = [
    *EN_LINES,
    *ZH_LINES,
    "Good morning. It is 6:30 and 12 degrees outside.",
    "Your next calendar event is at 3:15 p.m. on Thursday, leaving at 2:45 is fine.",
    "今天25°C，明天-3℃，后天下雨。",
    "会议在2024年5月1日下午3:15开始，请提前10分钟到。",
    "电话138-1234-5678，或者13812345678。",
    "It costs $5.99, or about 40% of the $15 budget.",
    "价格是$5.99，大概是预算的40%。",
    "He said \"it's fine\" (really) - then left... OK?",
    "他说：“没问题。”然后（真的）走了……好吗？",
    "xuan4 ju4 这两个字怎么读？",
    "GPT-5-nano 和 F5-TTS 都是模型。",
    "Send it to john.doe@example.com by May 5, 2024.",
    "abc@example.com",
    "a",
    " b ",
    "5",
    "好",
    "。。。hello",
    "Hello, world, how, are, you, today, my, friend, it, is, a, nice, day.",
    "The quick brown fox - the lazy dog - the end - again - and again - more.",
    "短句。" * 40,
    "This is a long sentence without any stop at all and it goes on " * 6,
    "'Quoted.' 'Another quoted sentence.' And the end.",
    "Tab\tand\nnew line,and,commas,,,and dots...",
    *_shared_texts(),
]


@pytest.mark.parametrize("text", PARITY_TEXTS)
def test_tokens_and_ids_match_official_tokenizer(
    frontend: TextFrontend, official_tokenizer: Any, text: str
) -> None:
    assert frontend.tokenize(text) == official_tokenizer.tokenize(text)
    assert frontend.encode(text) == official_tokenizer.encode(text)


@pytest.mark.parametrize("text", PARITY_TEXTS + [r["text"] for r in READINGS])
def test_normalizer_wraps_wetext_like_the_official(official_normalizer: Any, text: str) -> None:
    assert normalize(text) == official_normalizer.normalize(text)


@pytest.mark.parametrize("text", PARITY_TEXTS)
def test_segments_match_official_split_segments(
    frontend: TextFrontend, official_tokenizer: Any, text: str
) -> None:
    tokens = frontend.tokenize(text)
    for max_tokens in (120, 30, 9, 4):
        for quick in (0, 6):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                expected = official_tokenizer.split_segments(tokens, max_tokens, quick_streaming_tokens=quick)
            assert frontend.split_segments(tokens, max_tokens, quick) == expected, (max_tokens, quick)


def test_segments_are_cut_where_the_official_cuts(frontend: TextFrontend) -> None:
    tokens = frontend.tokenize("短句。" * 40)
    segments = frontend.split_segments(tokens, max_text_tokens_per_segment=20)
    assert len(segments) > 1
    assert all(len(segment) <= 20 for segment in segments)
    assert [t for segment in segments for t in segment] == tokens


def test_quote_after_sentence_end_is_repeated_like_the_official() -> None:
    tokens = ["A", "B", ".", "'", "C", "D", "."]
    expected = OFFICIAL.TextTokenizer.split_segments_by_token(
        tokens, OFFICIAL.TextTokenizer.punctuation_marks_tokens, max_text_tokens_per_segment=4
    )
    ours = split_segments(tokens, max_text_tokens_per_segment=4)
    assert ours == expected == [["A", "B", ".", "'"], ["'", "C", "D", "."]]


def test_segments_match_official_on_random_token_lists() -> None:
    rng = random.Random(1234)
    alphabet = ["A", "B", "▁C", "你", ".", "▁.", "!", "?", "▁?", "▁...", ",", "▁,", "-", "'", "▁'", "▁X"]
    for _ in range(400):
        tokens = [rng.choice(alphabet) for _ in range(rng.randint(0, 60))]
        max_tokens, quick = rng.choice([3, 4, 7, 12, 30, 120]), rng.choice([0, 0, 5, 20])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = OFFICIAL.TextTokenizer.split_segments_by_token(
                tokens, OFFICIAL.TextTokenizer.punctuation_marks_tokens, max_tokens, quick
            )
        assert split_segments(tokens, max_tokens, quick) == expected, (tokens, max_tokens, quick)


def test_segment_ids_are_the_tokens_ids(frontend: TextFrontend) -> None:
    text = "Good morning. It is 6:30 and 12 degrees outside. 今天很好。"
    segments = frontend.split_segments(frontend.tokenize(text), 10)
    assert frontend.segment_ids(text, 10) == [[frontend.sp.piece_to_id(t) for t in s] for s in segments]


def test_cjk_pre_tokenizer_matches_official() -> None:
    rng = random.Random(5)
    pool = "abcXYZ ßﬁ你好世界，。！?.-'" + "\u3000\u2e80\ua4cf\uff65\U00020001ｱ한"
    for _ in range(300):
        line = "".join(rng.choice(pool) for _ in range(rng.randint(0, 20)))
        assert frontend_text.tokenize_by_cjk_char(line) == OFFICIAL.tokenize_by_CJK_char(line)


# --------------------------------------------------------------------------------------
# Official pieces of the normaliser
# --------------------------------------------------------------------------------------


def test_punctuation_maps_are_the_official_ones_in_order() -> None:
    official = OFFICIAL.TextNormalizer()  # no load(): nemo is not installed
    assert list(CHAR_REP_MAP.items()) == list(official.char_rep_map.items())
    assert list(ZH_CHAR_REP_MAP.items()) == list(official.zh_char_rep_map.items())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你好，世界；真的：好", "你好,世界,真的,好"),
        ("他说“好”（真的）【注】《书》", "他说'好''真的''注''书'"),
        # WeTextProcessing folds fullwidth commas first (full_to_half, as the official runs it)
        ("等等……然后，，，", "等等…然后…"),
        ("wait,,, and...", "wait… and…"),
        ("a~b～c—d·e", "a-b-c-d-e"),
        ("价格$", "价格."),
    ],
)
def test_punctuation_is_mapped_like_the_official(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_punctuation_map_keeps_the_official_alternation_order() -> None:
    # "，" is tried before "，，，", so three fullwidth commas stay three commas
    assert frontend_text.map_punctuation("等等……然后，，，", chinese=True) == "等等…然后,,,"


def test_language_decision_matches_official() -> None:
    official = OFFICIAL.TextNormalizer()
    samples = [
        "Hello world",
        "你好 world",
        "12345",
        "...",
        "abc@example.com",
        "mail abc@example.com now",
        "xuan4 is pinyin",
        "beta1 voice2",
        "ＡＢＣ",
        "",
    ]
    rng = random.Random(3)
    pool = "ab xz1234你@.ü"
    samples += ["".join(rng.choice(pool) for _ in range(rng.randint(0, 12))) for _ in range(200)]
    for sample in samples:
        assert frontend_text.use_chinese(sample) == official.use_chinese(sample), sample


def test_pinyin_is_kept_and_corrected_like_the_official() -> None:
    official = OFFICIAL.TextNormalizer()
    for pinyin in ["xuan4", "ju4", "que4", "xün2", "zhong1", "shang5", "lv4", "er2"]:
        assert frontend_text.correct_pinyin(pinyin) == official.correct_pinyin(pinyin)
    assert normalize("这个字读xuan4，那个读ju4。") == "这个字读XVAN4,那个读JV4."
    assert normalize("zhong1 guo2 有5个") == "zhong1 guo2 有五个"


def test_contractions_are_expanded_like_the_official() -> None:
    assert normalize("It's late and that's fine, here's why.") == "It is late and that is fine, here is why."
    assert normalize("what's 这个") == "what is 这个"


def test_glossary_applies_like_the_official() -> None:
    glossary = {"C++": {"en": "C plus plus", "zh": "C 加加"}, "C#": "C sharp", "TTS": "T T S"}
    official = OFFICIAL.TextNormalizer(enable_glossary=True)
    official.load_glossary(glossary)
    for text, lang in [("I like c++ and C# and tts.", "en"), ("我喜欢C++和C#", "zh")]:
        assert frontend_text.apply_glossary(text, glossary, lang) == official.apply_glossary_terms(text, lang)
    assert normalize("我喜欢C++", glossary=glossary) == "我喜欢C 加加"


# --------------------------------------------------------------------------------------
# Readings: WeTextProcessing's, inside the official wrapping (the corpus and its verdicts
# are checked in tests/test_text_normalize.py)
# --------------------------------------------------------------------------------------



@pytest.mark.parametrize(("text", "expected"), [(r["text"], r["reading"]) for r in READINGS])
def test_readings(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_mixed_text_is_read_in_chinese_like_the_official() -> None:
    # any ideograph makes the whole text Chinese, numbers included (official use_chinese)
    assert normalize("Your package has 3 items, 快递已到。") == "Your package has 三 items, 快递已到."


def test_forced_language_overrides_the_decision() -> None:
    assert normalize("12°C", language="zh") == "十二摄氏度"
    assert normalize("十二 25", language="en") == "十二 twenty five"


# --------------------------------------------------------------------------------------
# Errors, robustness, import hygiene
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "...", "，。！？", "😀😀", "★ ✨", "\u200b", "."])
def test_text_without_anything_speakable_is_refused(frontend: TextFrontend, text: str) -> None:
    with pytest.raises(NoSpeakableTextError, match="Nothing to speak") as caught:
        frontend.tokenize(text)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(NoSpeakableTextError):
        frontend.encode(text)


def test_frontend_reads_the_model_folders_glossary_and_language(bpe_model: Path, tmp_path: Path) -> None:
    glossary = tmp_path / "glossary.yaml"
    glossary.write_text("C++:\n  en: C plus plus\n  zh: C 加加\nTTS: T T S\n", encoding="utf-8")
    english = TextFrontend.load(bpe_model, glossary_path=glossary, language="en")
    assert english.normalize("I like C++ and TTS, 12°C") == "I like C plus plus and T T S, twelve degrees Celsius"
    chinese = TextFrontend.load(bpe_model, glossary_path=glossary)
    assert chinese.normalize("我喜欢C++和TTS") == "我喜欢C 加加和T T S"


def test_missing_bpe_model_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="bpe.model"):
        TextFrontend.load(tmp_path / "bpe.model")


def _digits_left(text: str) -> list[str]:
    """Digits the normaliser should have read: any decimal digit outside a pinyin syllable
    (the official protection restores every copy of a syllable, also one glued to a letter)."""
    anywhere = frontend_text.PINYIN_TONE_PATTERN.removeprefix("(?<![a-z])")
    without_pinyin = re.sub(anywhere, "", text, flags=re.IGNORECASE)
    return [ch for ch in without_pinyin if unicodedata.category(ch) == "Nd"]


def test_normalize_never_raises_and_reads_every_digit() -> None:
    rng = random.Random(20240501)
    pool = list("0123456789０１٣..,,::--//%%$¥€£°℃+=~ kmgsKMhabcxyzAMPM年月日点分个第负号你好 ") + [
        "😀",
        "\u200d",
        "\ufe0f",
        "p.m.",
        "May ",
        "USD",
        "@x.com",
        "电话",
        "xuan4",
    ]
    latin_pool = [ch for ch in pool if not "\u4e00" <= ch <= "\u9fff"]  # reaches the English rules
    for i in range(800):
        parts = []
        for _ in range(rng.randint(0, 25)):
            if rng.random() < 0.1:
                code = rng.randint(0x20, 0x2FFFF)
                parts.append("" if 0xD800 <= code <= 0xDFFF else chr(code))
            else:
                parts.append(rng.choice(pool if i % 2 else latin_pool))
        text = "".join(parts)
        result = normalize(text)
        assert isinstance(result, str)
        assert not _digits_left(result), (text, result)


@pytest.mark.parametrize(
    ("text", "kept"),
    [("x " + "7" * 500, "x"), ("x $" + "9" * 500, "x"), ("x 1/" + "0" * 500, "x"), ("号" + "8" * 500 + "个", "号")],
)
def test_huge_digit_runs_are_read_without_raising(text: str, kept: str) -> None:
    result = normalize(text)
    assert result.startswith(kept) and not _digits_left(result)


def test_importing_the_frontend_does_not_import_torch() -> None:
    code = "import sys, wyoming_indextts.engines.indextts.text; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0
