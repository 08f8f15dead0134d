"""What the official IndexTTS frontend does around its normaliser, ported without torch.

`TextNormalizer.normalize` in indextts2-inference 2.1.1 (`indextts/utils/front.py`) and in
indextts25-inference 0.2.0 (`indextts25/utils/front.py`, which runs WeTextProcessing as we do):
the zh/en decision, the English contraction rewrite, the glossary, the protection of technical
terms (``GPT-5-nano``), tone-numbered pinyin (``xuan4``) and hyphenated Chinese names from the
normaliser, and last the punctuation map. Between protection and restoration the text goes
through `wyoming_indextts.text.normalize` (WeTextProcessing's grammars) where the official
code calls its normaliser. tests/indextts/test_text.py runs the official class itself with
our normaliser plugged in and compares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from ....text import normalize as written_out

Glossary = Mapping[str, str | Mapping[str, str]]

# Verbatim from the official frontend: the order decides which alternative the regex takes
# first (so "，，，" becomes ",,," there and here).
CHAR_REP_MAP: dict[str, str] = {
    "：": ",",
    "；": ",",
    ";": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": " ",
    "·": "-",
    "、": ",",
    "...": "…",
    ",,,": "…",
    "，，，": "…",
    "……": "…",
    "“": "'",
    "”": "'",
    '"': "'",
    "‘": "'",
    "’": "'",
    "（": "'",
    "）": "'",
    "(": "'",
    ")": "'",
    "《": "'",
    "》": "'",
    "【": "'",
    "】": "'",
    "[": "'",
    "]": "'",
    "—": "-",
    "～": "-",
    "~": "-",
    "「": "'",
    "」": "'",
    ":": ",",
}
ZH_CHAR_REP_MAP: dict[str, str] = {"$": ".", **CHAR_REP_MAP}

PINYIN_TONE_PATTERN = (
    r"(?<![a-z])((?:[bpmfdtnlgkhjqxzcsryw]|[zcs]h)?(?:[aeiouüv]|[ae]i|u[aio]|ao|ou|i[aue]|[uüv]e|[uvü]ang?"
    r"|uai|[aeiuv]n|[aeio]ng|ia[no]|i[ao]ng)|ng|er)([1-5])"
)
NAME_PATTERN = r"[\u4e00-\u9fff]+(?:[-·—][\u4e00-\u9fff]+){1,2}"
TECH_TERM_PATTERN = r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+"
ENGLISH_CONTRACTION_PATTERN = r"(what|where|who|which|how|t?here|it|s?he|that|this)'s"

PINYIN = re.compile(PINYIN_TONE_PATTERN, re.IGNORECASE)
_NAME = re.compile(NAME_PATTERN)
_TECH_TERM = re.compile(TECH_TERM_PATTERN)
_CONTRACTION = re.compile(ENGLISH_CONTRACTION_PATTERN, re.IGNORECASE)
_EMAIL_ONLY = re.compile(r"^[a-zA-Z0-9]+@[a-zA-Z0-9]+\.[a-zA-Z]+$")
_CJK_CHAR = re.compile(
    r"([\u1100-\u11ff\u2e80-\ua4cf\ua840-\uD7AF\uF900-\uFAFF\uFE30-\uFE4F\uFF65-\uFFDC\U00020000-\U0002FFFF])"
)
_TECH_HYPHEN = re.compile(r"\s*<H>\s*")


def char_map_pattern(mapping: Mapping[str, str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(key) for key in mapping))


_CHAR_REP = char_map_pattern(CHAR_REP_MAP)
_ZH_CHAR_REP = char_map_pattern(ZH_CHAR_REP_MAP)


def map_punctuation(text: str, chinese: bool) -> str:
    mapping, pattern = (ZH_CHAR_REP_MAP, _ZH_CHAR_REP) if chinese else (CHAR_REP_MAP, _CHAR_REP)
    return pattern.sub(lambda m: mapping[m.group(0)], text)


def use_chinese(text: str) -> bool:
    """The official language decision for a whole text (zh unless it looks English)."""
    if re.search(r"[\u4e00-\u9fff]", text) or not re.search(r"[a-zA-Z]", text):
        return True
    if _EMAIL_ONLY.match(text):
        return True
    return bool(PINYIN.search(text))


def tokenize_by_cjk_char(line: str) -> str:
    """Official 2.0 pre-tokenizer: CJK characters become words of their own, all upper case."""
    parts = _CJK_CHAR.split(line.strip())
    return " ".join(part.strip().upper() for part in parts if part.strip())


def correct_pinyin(pinyin: str) -> str:
    """Official `correct_pinyin`: ``ju4`` -> ``JV4``, ``xuan2`` -> ``XVAN2``; others unchanged."""
    if pinyin[0] not in "jqxJQX":
        return pinyin
    return re.sub(r"([jqx])[uü](n|e|an)*(\d)", r"\g<1>v\g<2>\g<3>", pinyin, flags=re.IGNORECASE).upper()


def apply_glossary(text: str, glossary: Glossary, lang: str) -> str:
    """Official glossary semantics: longest term first, case-insensitive, per-language value."""
    for term in sorted(glossary, key=len, reverse=True):
        value = glossary[term]
        replacement = value if isinstance(value, str) else value.get(lang, term)
        text = re.sub(re.escape(term), lambda _m, r=replacement: r, text, flags=re.IGNORECASE)
    return text


def _protect(text: str, found: list[str], tag: str) -> tuple[str, list[str]]:
    """Official `save_pinyin_tones`/`save_names`: each distinct match becomes ``<tag_a>``,
    ``<tag_b>``... (longest first, so a match inside another is not cut apart)."""
    saved = sorted(set(found), key=len, reverse=True)
    for index, original in enumerate(saved):
        text = text.replace(original, f"<{tag}_{chr(ord('a') + index)}>")
    return text, saved


def _restore(text: str, saved: list[str], tag: str, fix: Callable[[str], str] = str) -> str:
    for index, original in enumerate(saved):
        text = text.replace(f"<{tag}_{chr(ord('a') + index)}>", fix(original))
    return text


def _protect_tech_terms(text: str) -> tuple[str, bool]:
    """Official `save_tech_terms`: the hyphens of ``GPT-5-nano`` become ``<H>``, so the
    normaliser reads the digits but no minus sign."""
    terms = sorted(set(_TECH_TERM.findall(text)), key=len, reverse=True)
    for term in terms:
        text = text.replace(term, term.replace("-", "<H>"))
    return text, bool(terms)


def normalize(text: str, language: str | None = None, glossary: Glossary | None = None) -> str:
    """Written form -> what the official frontend feeds its tokenizer.

    `language` forces ``"zh"`` or ``"en"``; by default the official `use_chinese` decides for
    the whole text. Never raises; the result may be empty or punctuation only.
    """
    lang = (language or ("zh" if use_chinese(text) else "en")).lower()
    text = _CONTRACTION.sub(r"\1 is", text)
    if glossary:
        text = apply_glossary(text, glossary, lang)
    if lang != "zh":
        text, had_terms = _protect_tech_terms(text)
        result = written_out(text, "en")
        return map_punctuation(_TECH_HYPHEN.sub("-", result) if had_terms else result, chinese=False)
    text, had_terms = _protect_tech_terms(text.rstrip())
    text, pinyin = _protect(text, [m.group(0) for m in PINYIN.finditer(text)], "pinyin")
    text, names = _protect(text, _NAME.findall(text), "n")
    result = written_out(text, "zh")
    result = _restore(result, names, "n")
    result = _restore(result, pinyin, "pinyin", correct_pinyin)
    if had_terms:
        result = _TECH_HYPHEN.sub("-", result)
    return map_punctuation(result, chinese=True)
