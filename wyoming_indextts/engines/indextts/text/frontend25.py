"""IndexTTS-2.5 text preparation without torch, ported from indextts25-inference 0.2.0
(`IndexTTS2._prepare_text`, `split_text_by_tokens` and `apply_pronunciation_annotations` in
`infer_v2_5.py`, `TextNormalizer.normalize` in `utils/front.py`, `utils/ja_g2p.py`).

Per language, as the official code does it:
- zh, en (and "zhen"): the punctuation map first (colons kept for the clock), then
  WeTextProcessing's grammars inside the official wrapping (`official.normalize`, the same
  wetext the official code runs where WeTextProcessing's pynini build is missing), lower case.
- ja: no normalisation. The official code sends Japanese to its NeMo module, which leaves
  Japanese out on purpose ("not validated by ear"); wetext's Japanese grammar
  (`wyoming_indextts.text.normalize(text, "ja")`) is there, but using it would change the
  tokens the official code gives the model. Then words are split apart by MeCab's UniDic
  (fugashi + unidic-lite, the `ja` extra), lower case.
- es: the official code normalises Spanish with NeMo's grammars (`nemo_text_processing`,
  which needs pynini: no wheel for it on PyPI for every platform, and a large build). We
  cannot run them: Spanish text reaches the tokenizer as written, numbers as digits, then
  upper case as there. The model reads plain Spanish words the same; digits, dates and
  symbols may be read differently from the official frontend.
- ar: the official code does not normalise Arabic at all (its NeMo module lists Arabic, but
  `_prepare_text` never sends Arabic to it); neither do we.
Last, ``<word|PRON>`` pronunciation annotations become special-token spans, as there.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ....sentences import has_speakable
from .frontend import NoSpeakableTextError
from .official import CHAR_REP_MAP, Glossary, char_map_pattern, normalize, use_chinese
from .tokenizer25 import Tokenizer25, language_id, language_prefix

WETEXT_LANGUAGES = ("zh", "zhen", "en")
LOWER_CASED = ("ja", "zh", "zhen", "en")
CLOCK_COLONS = ":："
PRONUNCIATION_ANNOTATION = re.compile(r"<([^|>\n]+)\|([^>\n]+)>")
_SPECIAL = re.compile(r"<\|([^|]+)\|>")
_PROTECTED_SPAN = re.compile(r"<\|SPECIAL_TOKEN_\d+\|>.*?<\|SPECIAL_TOKEN_\d+\|>")
_CLAUSE_END = re.compile(r"(?<=[，。！？、；：,\.!\?;:\n])")
_WORD = re.compile(r"\S+\s*|\s+")
_KANA = re.compile(r"[\u3040-\u309f]+|[\u30a0-\u30ff]+")
_ARABIC = re.compile(r"[\u0600-\u06ff]")
LATIN_LANGUAGES = ("en", "es")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_CHAR_REP = char_map_pattern(CHAR_REP_MAP)
_JAPANESE_LOADING = threading.Lock()


def map_punctuation(text: str, keep: str = "") -> str:
    """The official `char_rep_map` pass of `_prepare_text`, leaving the characters in `keep`."""
    return _CHAR_REP.sub(lambda m: m.group(0) if m.group(0) in keep else CHAR_REP_MAP[m.group(0)], text)


def _alpha_tag(index: int) -> str:
    tag = ""
    while True:
        tag = chr(ord("a") + index % 26) + tag
        index = index // 26 - 1
        if index < 0:
            return tag


def normalize25(text: str, lang: str, glossary: Glossary | None = None) -> str:
    """The 2.5 `TextNormalizer.normalize`: pronunciation annotations kept out of the
    normaliser, then the zh or en branch (zh unless `lang` is "en" or the text looks English)."""
    saved: dict[str, str] = {}

    def hide(match: re.Match[str]) -> str:
        key = f"PRONPLACEHOLDER{_alpha_tag(len(saved))}PRONPLACEHOLDER"
        saved[key] = match.group(0)
        return key

    text = PRONUNCIATION_ANNOTATION.sub(hide, text)
    chinese = lang != "en" and use_chinese(text)
    text = normalize(text, language="zh" if chinese else "en", glossary=glossary)
    for key, annotation in saved.items():
        text = text.replace(key, annotation)
    return text


def apply_pronunciation_annotations(text: str) -> str:
    """``<行|XING2>`` -> ``<|SPECIAL_TOKEN_2|>XING2<|SPECIAL_TOKEN_2|>`` (1 for a word without
    Chinese); a kana reading is spoken as it is, between spaces."""

    def replace(match: re.Match[str]) -> str:
        word, pronunciation = match.group(1), match.group(2).upper()
        if _KANA.fullmatch(pronunciation):
            return f" {pronunciation} "
        token = "SPECIAL_TOKEN_2" if _HAN.search(word) else "SPECIAL_TOKEN_1"
        return f"<|{token}|>{pronunciation}<|{token}|>"

    return PRONUNCIATION_ANNOTATION.sub(replace, text)


class JapaneseWords:
    """Japanese split into words (MeCab with UniDic-lite via fugashi), joined by spaces: the
    official `JapaneseG2PProcessor` at its inference setting (``g2p_ratio=0``: no kanji
    replaced by kana). Spaces already in the text stay where they are."""

    def __init__(self) -> None:
        try:
            import fugashi
        except ImportError as err:
            raise ImportError(
                "Japanese text for IndexTTS-2.5 needs fugashi and unidic-lite: "
                "pip install 'wyoming-indextts[ja]'"
            ) from err
        self._tagger = fugashi.Tagger()
        # one MeCab tagger is not safe to call from two render threads at once
        self._lock = threading.Lock()

    def __call__(self, text: str) -> str:
        with self._lock:
            return "".join(
                " ".join(word.surface for word in self._tagger(part)) if part.strip() else part
                for part in re.split(r"( +)", text)
            )


def prepare_text(
    text: str,
    lang: str,
    glossary: Glossary | None = None,
    japanese_words: Callable[[str], str] | None = None,
    normalise: bool = True,
) -> str:
    """The official `_prepare_text`: the text the 2.5 tokenizer encodes, segment prefix not
    included. `japanese_words` is needed for ``lang="ja"`` (a `JapaneseWords`)."""
    lang = lang.lower()
    if lang not in ("es", "ja"):
        text = map_punctuation(text, keep=CLOCK_COLONS if normalise and lang in WETEXT_LANGUAGES else "")
    if normalise and lang in WETEXT_LANGUAGES:
        text = normalize25(text, lang, glossary)
    text = map_punctuation(text)
    if lang in LOWER_CASED:
        text = text.lower()
    elif lang == "es":
        text = text.upper()
    text = apply_pronunciation_annotations(text)
    if lang == "ja":
        if japanese_words is None:
            raise ValueError("Japanese text needs a word splitter (JapaneseWords)")
        text = japanese_words(text)
    return _SPECIAL.sub(lambda m: f"<|{m.group(1).upper()}|>", text)


def split_text_by_tokens(text: str, tokenizer: Tokenizer25, max_tokens: int, capacity: int, lang: str) -> list[str]:
    """The official `split_text_by_tokens`: segments of at most `max_tokens` tokens with the
    language prefix (and within the GPT's `capacity` text positions, less its start and stop
    tokens), cut after punctuation, else between words, else between characters; an
    annotation span is never cut."""
    count = tokenizer.count
    budget = max(1, min(max_tokens, capacity - 2) - count(language_prefix(lang)))

    def fits(piece: str) -> bool:
        return count(piece) <= budget

    if fits(text):
        return [text]
    chunks: list[str] = []
    for piece, atomic in _atomic_pieces(text):
        if atomic:
            chunks.append(piece)
            continue
        for part in _CLAUSE_END.split(piece):
            if not part:
                continue
            if fits(part):
                chunks.append(part)
                continue
            # no punctuation in reach: between words; a word too long alone, per character
            units = [unit for word in _WORD.findall(part) for unit in ([word] if fits(word) else word)]
            chunks += _pack(units, fits)
    return _pack(chunks, fits) or [text]


def _pack(units: list[str], fits: Callable[[str], bool]) -> list[str]:
    """Neighbours joined while they fit, in order (the official accumulation)."""
    packed: list[str] = []
    current = ""
    for unit in units:
        if current and not fits(current + unit):
            packed.append(current)
            current = unit
        else:
            current += unit
    if current:
        packed.append(current)
    return packed


def _atomic_pieces(text: str) -> list[tuple[str, bool]]:
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in _PROTECTED_SPAN.finditer(text):
        if match.start() > position:
            pieces.append((text[position : match.start()], False))
        pieces.append((match.group(0), True))
        position = match.end()
    if position < len(text):
        pieces.append((text[position:], False))
    return pieces


@dataclass
class TextFrontend25:
    """Text -> the GPT inputs of an IndexTTS-2.5 model: per segment the token ids (language
    token first), and the language id the GPT takes beside them."""

    tokenizer: Tokenizer25
    glossary: dict[str, str | dict[str, str]] = field(default_factory=dict)
    _japanese: JapaneseWords | None = None

    @classmethod
    def load(cls, tokenizer_path: Path, glossary_path: Path | None = None) -> TextFrontend25:
        glossary: dict[str, str | dict[str, str]] = {}
        if glossary_path is not None and Path(glossary_path).is_file():
            import yaml  # only needed when a model folder ships a glossary

            loaded = yaml.safe_load(Path(glossary_path).read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                glossary = {str(k): v for k, v in loaded.items()}
        return cls(Tokenizer25.load(tokenizer_path), glossary)

    def prepare(self, text: str, lang: str) -> str:
        if lang.lower() == "ja" and self._japanese is None:
            with _JAPANESE_LOADING:
                if self._japanese is None:
                    self._japanese = JapaneseWords()  # the dictionary loads on first Japanese text
        return prepare_text(text, lang, self.glossary, self._japanese)

    def segment_ids(self, text: str, lang: str, capacity: int, max_tokens: int = 120) -> list[list[int]]:
        """`capacity`: the GPT's text positions (its text position table's size). Raises
        NoSpeakableTextError when nothing in the text can be spoken."""
        prepared = self.prepare(text, lang)
        if not has_speakable(prepared):
            raise NoSpeakableTextError(f"Nothing to speak in {text[:40]!r}: send text with a letter or digit.")
        segments = split_text_by_tokens(prepared, self.tokenizer, max_tokens, capacity, lang)
        return [self.tokenizer.encode(segment, lang) for segment in segments]

    @staticmethod
    def language_id(lang: str) -> int:
        return language_id(lang)


class LanguageIds(list):
    """Token ids of one segment, with the language they are in (``language``: "en", "zh", ...)."""

    def __init__(self, ids: Sequence[int], language: str) -> None:
        super().__init__(int(i) for i in ids)
        self.language = language


@dataclass(frozen=True)
class Frontend25:
    """`TextFrontend25` with a language per text: the forced one (options.language), else the
    text's script (kana: ja, Han: zh, Arabic: ar), else the voice's first Latin-script language
    (its yaml `languages`: en or es), else en."""

    frontend: TextFrontend25
    capacity: int
    """The GPT's text positions (`TextFrontend25.segment_ids`)."""
    language: str | None = None

    def language_for(self, text: str, languages: Sequence[str] = ()) -> str:
        if self.language:
            return self.language
        if _KANA.search(text):
            return "ja"
        if _HAN.search(text):
            return "zh"
        if _ARABIC.search(text):
            return "ar"
        return next((lang for lang in languages if lang in LATIN_LANGUAGES), "en")

    def segment_ids(self, text: str, max_tokens: int, languages: Sequence[str] = ()) -> list[LanguageIds]:
        language = self.language_for(text, languages)
        return [LanguageIds(ids, language) for ids in self.frontend.segment_ids(text, language, self.capacity, max_tokens)]
