"""IndexTTS-2.5 text side: our torch-free tokenizer and text preparation against the
official indextts25-inference 0.2.0 code, on the same small tiktoken BPE file.

The real tokenizer file cannot be downloaded here, so a small byte-level BPE is trained on
zh/en/ja/es/ar lines and written as a ``.tiktoken`` file exactly as the official
`get_encoding` reads it (``base64(token) rank`` lines). The official tokenizer module is
imported without its package (whose __init__ loads torch); the official `_prepare_text` and
`split_text_by_tokens` are methods of the torch-bound `IndexTTS2` class, so their source is
taken from the installed file and run on a stand-in holding only what they use: the official
`TextNormalizer` (with WeTextProcessing's grammars from wetext where it would load
WeTextProcessing), the official Japanese word splitter, the official tokenizer.
"""

from __future__ import annotations

import ast
import base64
import collections
import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import regex

from wyoming_indextts.engines.indextts.text import official as ours_official
from wyoming_indextts.engines.indextts.text.frontend import NoSpeakableTextError
from wyoming_indextts.engines.indextts.text.frontend25 import JapaneseWords, TextFrontend25, prepare_text
from wyoming_indextts.engines.indextts.text.tokenizer25 import (
    LANGUAGES,
    PRE_TOKENIZER,
    Tokenizer25,
    language_id,
    special_tokens,
)
from wyoming_indextts.text import normalize as written_out

def _official(module: str) -> ModuleType:
    """`indextts25.<module>` without running the package __init__ (it imports torch)."""
    spec = importlib.util.find_spec("indextts25")
    assert spec is not None and spec.submodule_search_locations, "indextts25-inference is not installed"
    saved = sys.modules.get("indextts25")
    stub = types.ModuleType("indextts25")
    stub.__path__ = list(spec.submodule_search_locations)
    sys.modules["indextts25"] = stub
    try:
        return importlib.import_module(f"indextts25.{module}")
    finally:
        if saved is None:
            sys.modules.pop("indextts25", None)
        else:
            sys.modules["indextts25"] = saved


OFFICIAL_TOKENIZER = _official("utils.tokenizer")
OFFICIAL_FRONT = _official("utils.front")
OFFICIAL_JA = _official("utils.ja_g2p")
OFFICIAL_NEMO = _official("utils.nemo_tn")
INFER_SOURCE = Path(importlib.util.find_spec("indextts25").submodule_search_locations[0]) / "infer_v2_5.py"


def _official_text_methods() -> dict[str, Any]:
    """`is_kana`, `apply_pronunciation_annotations` and the text methods of `IndexTTS2`, from
    the installed infer_v2_5.py, compiled without its torch imports."""
    tree = ast.parse(INFER_SOURCE.read_text(encoding="utf-8"))
    wanted_module = {"PRONUNCIATION_ANNOTATION_PATTERN", "is_kana", "apply_pronunciation_annotations"}
    wanted_methods = {"SPLIT_PROTECTED_PATTERN", "_prepare_text", "_token_len", "_split_atomic_pieces", "split_text_by_tokens"}
    body: list[ast.stmt] = []
    for node in tree.body:
        name = getattr(node, "name", None) or (isinstance(node, ast.Assign) and node.targets[0].id)
        if name in wanted_module:
            body.append(node)
        if isinstance(node, ast.ClassDef) and node.name == "IndexTTS2":
            members = [
                m
                for m in node.body
                if getattr(m, "name", None) in wanted_methods
                or (isinstance(m, ast.Assign) and m.targets[0].id in wanted_methods)
            ]
            body.append(ast.ClassDef("OfficialText", [], [], members, [], type_params=[]))
    module = ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
    namespace: dict[str, Any] = {"re": re, "nemo_text_normalize": OFFICIAL_NEMO.normalize_text}
    exec(compile(module, str(INFER_SOURCE), "exec"), namespace)  # noqa: S102 - the official file
    assert {"OfficialText", "apply_pronunciation_annotations"} <= namespace.keys()
    return namespace


OFFICIAL_INFER = _official_text_methods()

EN = [
    "The dishwasher is done and the kitchen lights are off.",
    "Good morning! It is 6:30 and 12 degrees outside; the high is 25°C.",
    "Your next event is at 3:15 p.m. on Thursday, May 5, 2024.",
    "It costs $5.99, about 40% of the budget. GPT-5-nano and F5-TTS are models.",
    "He said \"it's fine\" (really) - then left... OK?",
    "Read <going|G OW1 . IH0 NG> like this.",
    "a sentence without any stop that goes on and on about the lights the doors and the heating",
]
ZH = [
    "欢迎回家，客厅的灯已经为您打开。",
    "今天25°C，明天-3℃，后天下雨。会议在2024年5月1日下午3:15开始。",
    "电话138-1234-5678，价格是$5.99，大概是预算的40%。",
    "xuan4 ju4 这两个字怎么读？<行|XING2>不行。",
    "克里斯托弗·诺兰是一位导演，GPT-5-nano 和 F5-TTS 都是模型。",
    "他说：“没问题。”然后（真的）走了……好吗？Your package has arrived.",
    "今天天气很好我们一起去公园散步然后回家吃饭休息一下再出发去超市买东西",  # no punctuation
]
JA = [
    "今日は良い天気ですね。",
    "東京の気温は25度で、午後3時から雨が降ります。",
    "ホームアシスタントが 電気を 消しました。",
    "この漢字は<行|ギョウ>と読みます。",
]
ES = ["Hola, ¿qué tal? Son las 14:30 y hace 25 grados.", "El paquete llegó (por fin) — gracias."]
AR = ["مرحبا بك في المنزل، الأضواء مطفأة.", "درجة الحرارة 25 اليوم."]
CORPUS = [(t, "en") for t in EN] + [(t, "zh") for t in ZH] + [(t, "ja") for t in JA] + [(t, "es") for t in ES]
CORPUS += [(t, "ar") for t in AR] + [(ZH[5], "zhen"), (EN[1], "zh"), (ZH[0] + EN[0], "en")]


def _train_bpe(lines: list[str], merges: int) -> dict[bytes, int]:
    """A byte-level BPE in tiktoken's form: the 256 bytes, then the most frequent adjacent
    pairs inside the official pre-tokenizer's pieces, merged one by one."""
    ranks = {bytes([b]): b for b in range(256)}
    words = collections.Counter(
        tuple(bytes([b]) for b in piece.encode()) for line in lines for piece in regex.findall(PRE_TOKENIZER, line)
    )
    for _ in range(merges):
        pairs: collections.Counter[tuple[bytes, bytes]] = collections.Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += n
        if not pairs:
            break
        (a, b), _count = pairs.most_common(1)[0]
        ranks[a + b] = len(ranks)
        merged = collections.Counter()
        for word, n in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += n
        words = merged
    return ranks


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiktoken25")
    lines = [prepare_text(t, lang, japanese_words=_JA_OURS) for t, lang in CORPUS if lang != "ja"] + JA + EN + ZH
    ranks = _train_bpe(lines, merges=400)
    # rank order shuffled against byte order, as in a real file: ids are the ranks, not the line numbers
    entries = sorted(ranks.items(), key=lambda item: (len(item[0]), item[0][::-1]))
    text = "".join(f"{base64.b64encode(token).decode()} {rank}\n" for token, rank in entries)
    (folder / "tiny_multilingual.tiktoken").write_text(text, encoding="utf-8")
    return folder


class _Wetext:
    """Where the official 2.5 frontend loads WeTextProcessing (pynini): wetext's grammars."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def normalize(self, text: str) -> str:
        return written_out(text, self.lang)


_JA_OURS = JapaneseWords()


@pytest.fixture(scope="module")
def official(bpe_dir: Path) -> Any:
    text_process = OFFICIAL_FRONT.TextNormalizer(enable_glossary=True)
    text_process.zh_normalizer, text_process.en_normalizer = _Wetext("zh"), _Wetext("en")
    return OFFICIAL_INFER["OfficialText"].__new__(OFFICIAL_INFER["OfficialText"]), SimpleNamespace(
        text_process=text_process,
        ja_text_process=OFFICIAL_JA.JapaneseG2PProcessor(g2p_ratio=0),
        tokenizer=OFFICIAL_TOKENIZER.get_encoding("tiny_multilingual", model_dir=str(bpe_dir)),
    )


@pytest.fixture(scope="module")
def frontend(bpe_dir: Path) -> TextFrontend25:
    return TextFrontend25.load(bpe_dir / "tiny_multilingual.tiktoken")


def _official_segment_ids(official: Any, text: str, lang: str, max_tokens: int, capacity: int) -> list[list[int]]:
    methods, state = official
    cls = type(methods)
    state.gpt = SimpleNamespace(text_pos_embedding=SimpleNamespace(emb=SimpleNamespace(num_embeddings=capacity)))
    state._token_len = lambda t: cls._token_len(state, t)
    state._split_atomic_pieces = lambda t: cls._split_atomic_pieces(state, t)
    state.SPLIT_PROTECTED_PATTERN = cls.SPLIT_PROTECTED_PATTERN
    prepared = cls._prepare_text(state, text, lang)
    prefix = f"<|{lang.lower()}|> "
    segments = cls.split_text_by_tokens(state, prepared, max_tokens, prefix)
    return [state.tokenizer.encode(prefix + s, allowed_special="all") for s in segments]


def test_special_tokens_and_language_ids_are_the_official_ones(frontend: TextFrontend25, official: Any) -> None:
    encoding = official[1].tokenizer
    assert special_tokens(encoding.n_vocab - len(encoding._special_tokens)) == encoding._special_tokens
    assert frontend.tokenizer.vocab_size == encoding.n_vocab
    for lang in [*LANGUAGES, "ZH", "xx", "zhen"]:
        assert language_id(lang) == OFFICIAL_TOKENIZER.lang_to_token(lang), lang


@pytest.mark.parametrize(("text", "lang"), CORPUS)
def test_token_ids_equal_the_official_tokenizer(frontend: TextFrontend25, official: Any, text: str, lang: str) -> None:
    encoding = official[1].tokenizer
    for piece in (text, prepare_text(text, lang, japanese_words=_JA_OURS)):
        ids = frontend.tokenizer.encode(piece, lang)
        assert ids == encoding.encode(f"<|{lang.lower()}|> " + piece, allowed_special="all")
        assert frontend.tokenizer.count(piece) == len(encoding.encode(piece, allowed_special="all"))


@pytest.mark.parametrize(("text", "lang"), CORPUS)
def test_prepared_text_and_segments_equal_the_official(
    frontend: TextFrontend25, official: Any, text: str, lang: str
) -> None:
    methods, state = official
    assert frontend.prepare(text, lang) == type(methods)._prepare_text(state, text, lang)
    for max_tokens, capacity in ((120, 600), (12, 600), (40, 20)):
        expected = _official_segment_ids(official, text, lang, max_tokens, capacity)
        assert frontend.segment_ids(text, lang, capacity, max_tokens) == expected, (max_tokens, capacity)


def test_long_text_is_cut_under_the_budget_at_clause_ends(frontend: TextFrontend25) -> None:
    segments = frontend.segment_ids("今天天气很好，我们去公园散步。" * 12, "zh", capacity=600, max_tokens=30)
    assert len(segments) > 1 and all(len(ids) <= 30 for ids in segments)


def test_the_language_token_and_id_lead_each_segment(frontend: TextFrontend25) -> None:
    zh_token = frontend.tokenizer.encoding.encode_single_token("<|zh|>")
    ja_token = frontend.tokenizer.encoding.encode_single_token("<|ja|>")
    assert frontend.segment_ids("你好。", "zh", capacity=600)[0][0] == zh_token
    assert frontend.segment_ids("こんにちは。", "ja", capacity=600)[0][0] == ja_token
    common = OFFICIAL_TOKENIZER.LANGUAGE_DICT["common"]
    assert (frontend.language_id("zh"), frontend.language_id("ja"), frontend.language_id("xx")) == (1, 7, common)


def test_text_without_anything_speakable_is_refused(frontend: TextFrontend25) -> None:
    with pytest.raises(NoSpeakableTextError):
        frontend.segment_ids("……！？", "zh", capacity=600)


def test_a_broken_tokenizer_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tiktoken"
    path.write_text("IQ== 0\nnot-base64 x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.tiktoken:2"):
        Tokenizer25.load(path)
    with pytest.raises(FileNotFoundError, match=".tiktoken"):
        Tokenizer25.load(tmp_path / "missing.tiktoken")


def test_the_2_5_frontend_keeps_the_official_zh_en_wrapping() -> None:
    # same wrapping as 2.0 between the annotation placeholders (official.normalize)
    assert ours_official.use_chinese("xuan4 is pinyin")
    assert prepare_text("GPT-5-nano 很好", "zh") == "gpt-五-nano 很好"
