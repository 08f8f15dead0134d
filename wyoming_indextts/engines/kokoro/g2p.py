"""Text → Kokoro-82M v1.0 phonemes for Mandarin, English words inside it spoken as English.

Three steps, each from an offline registry package:
- numbers, dates, times, units and symbols are written out by WeTextProcessing's grammars
  (`wyoming_indextts.text.normalize`, wetext with its fixes): misaki alone reads "3:30" and
  "°C" as noise;
- runs of Chinese are read as misaki's `ZHG2P` reads them for Kokoro v1.0 (jieba words,
  pypinyin tones → Kokoro's IPA with tone arrows), the G2P its Mandarin voices were trained
  with, plus what that reading leaves out (`readings`): tone sandhi (一, 不, third-tone
  pairs, neutral tones) by misaki's own ToneSandhi, and the household words whose pypinyin
  reading is wrong (调 in 调到/调高 is tiáo, not diào);
- runs of Latin letters go through espeak-ng's American English (the copy that ships with
  piper-tts), mapped to Kokoro's phoneme set as misaki's own espeak fallback maps them.
  Left to ZHG2P they pass through as raw letters and are read as noise ("Home Assistant"
  was heard as "Omei C3").
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata

import cn2an
import jieba
import jieba.posseg
from misaki.tone_sandhi import ToneSandhi
from misaki.zh import ZHG2P
from piper.phonemize_espeak import EspeakPhonemizer
from pypinyin import Style, lazy_pinyin

from ...text import normalize
from ...voices import HAN

LATIN_WORDS = re.compile(r"[A-Za-z][A-Za-z'’-]*(?: +[A-Za-z][A-Za-z'’-]*)*")
PUNCTUATION_SPACING = re.compile(r" *([,.!?;:]) *")
ENGLISH_VOICE = "en-us"
HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
PINYIN = re.compile(r"[a-z]+[1-5]")
"""A syllable pypinyin could read; a character it cannot comes back as itself and is dropped."""

# Readings pypinyin gets wrong in what a smart home says, each fixed where its context shows
# the meaning: (character with what must follow or precede it, pinyin). Without them 调 in
# "调到二十六度" is read diào ("drop"), 长 in 长时间 zhǎng ("grow").
CONTEXT_READINGS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"调(?=[到高低成暗亮大小回至为整节])"), "tiao2"),  # adjust: 调到, 调高, 调成
    (re.compile(r"(?<=[设改])为"), "wei2"),  # set to: 设为, 改为
    (re.compile(r"长(?=时间|按|亮)"), "chang2"),  # long: 长时间, 长按, 长亮
    (re.compile(r"一(?=[楼层号])"), "yi1"),  # ordinal, no sandhi: 一楼 is the first floor
)

# misaki's EspeakFallback table (Apache-2.0), for espeak output without tie marks, longest
# first, then its American-English replacements; Kokoro v1.0 writes flaps as T.
ESPEAK_TO_KOKORO: tuple[tuple[str, str], ...] = (
    ("ʔˌn\u0329", "ʔn"),
    ("ʔn\u0329", "ʔn"),
    ("aɪ", "I"),
    ("aʊ", "W"),
    ("dʒ", "ʤ"),
    ("eɪ", "A"),
    ("tʃ", "ʧ"),
    ("ɔɪ", "Y"),
    ("ʲo", "jo"),
    ("ʲə", "jə"),
    ("ʲ", ""),
    ("ɚ", "əɹ"),
    ("e", "A"),
    ("r", "ɹ"),
    ("x", "k"),
    ("ç", "k"),
    ("ɐ", "ə"),
    ("ɬ", "l"),
    ("\u0303", ""),
    ("\u0329", ""),
    ("oʊ", "O"),
    ("ɜːɹ", "ɜɹ"),
    ("ɜː", "ɜɹ"),
    ("ɪə", "iə"),
    ("ː", ""),
    ("o", "ɔ"),
    ("ɾ", "T"),
    ("ʔ", "t"),
)


def has_han(text: str) -> bool:
    return HAN.search(text) is not None


class MandarinG2P:
    """Thread-safe: the worker threads of several renders may phonemize at once."""

    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()  # its dictionary takes a second or two: at start-up, not mid-request
        self._sandhi = ToneSandhi()
        self._espeak = EspeakPhonemizer()
        # espeak-ng keeps its voice in global state, and jieba's caches are not documented as
        # thread-safe: one sentence at a time through here (a few ms each).
        self._lock = threading.Lock()

    def normalise(self, text: str) -> str:
        return normalize(text, "zh" if has_han(text) else "en")

    def phonemes(self, text: str) -> str:
        """Kokoro phonemes for `text`; characters the model has no token for are dropped."""
        written = self.normalise(text)
        pieces: list[str] = []
        position = 0
        with self._lock:
            for match in LATIN_WORDS.finditer(written):
                pieces.append(self._mandarin(written[position : match.start()]))
                pieces.append(self._english(match.group()))
                position = match.end()
            pieces.append(self._mandarin(written[position:]))
        kept = "".join(c for c in " ".join(pieces) if c in self.vocab)
        # One space after each punctuation mark and none before it, as Kokoro was trained;
        # wetext turns "，" into "," with no space, and the splitter cuts clauses at ", ".
        kept = PUNCTUATION_SPACING.sub(r"\1 ", kept)
        return re.sub(r" {2,}", " ", kept).strip()

    def readings(self, run: str) -> list[tuple[str, list[str]]]:
        """The words of a run of Han characters with their pinyin as spoken (tone number,
        5 for neutral): pypinyin's reading of each jieba word, as misaki's ZHG2P gives it to
        Kokoro v1.0, with the context readings above and tone sandhi applied."""
        fixed = {m.start(): reading for pattern, reading in CONTEXT_READINGS for m in pattern.finditer(run)}
        segments = [(pair.word, pair.flag) for pair in jieba.posseg.lcut(run)]
        try:
            words = self._sandhi.pre_merge_for_modify(segments)
        except IndexError:  # a character with no pinyin final (嗯, 呣, one pypinyin does not know)
            words = segments
        spoken: list[tuple[str, list[str]]] = []
        position = 0
        for word, pos in words:
            syllables = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)
            mine = {index: fixed[position + index] for index in range(len(word)) if position + index in fixed}
            for index, reading in mine.items():
                syllables[index] = reading
            try:
                said = self._sandhi.modified_tone(word, pos, list(syllables))
            except IndexError:  # as above: this word is read without sandhi
                said = list(syllables)
            # ToneSandhi makes every word-final 地 the adverb particle de; in 扫地 or 拖地 it is
            # the floor (jieba tags the particle alone, as uv).
            if len(word) > 1 and word[-1] == "地":
                said[-1] = syllables[-1]
            for index, reading in mine.items():  # a fixed reading is as said, sandhi included
                said[index] = reading
            spoken.append((word, said))
            position += len(word)
        return spoken

    def _mandarin(self, text: str) -> str:
        """As misaki's ZHG2P (legacy, Kokoro v1.0) writes it, with `readings` for the pinyin."""
        if not text.strip():
            return text
        text = ZHG2P.map_punctuation(cn2an.transform(text, "an2cn"))
        pieces: list[str] = []
        position = 0
        for match in HAN_RUN.finditer(text):
            pieces.append(text[position : match.start()])
            words = self.readings(match.group())
            pieces.append(" ".join("".join(ZHG2P.py2ipa(s) for s in syllables if PINYIN.fullmatch(s)) for _, syllables in words))
            position = match.end()
        pieces.append(text[position:])
        return "".join(pieces).replace(chr(815), "")

    def _english(self, words: str) -> str:
        sentences = self._espeak.phonemize(ENGLISH_VOICE, words)
        # Piper's phonemizer hands out decomposed (NFD) characters; the table is composed.
        phonemes = unicodedata.normalize("NFC", " ".join("".join(chars) for chars in sentences)).strip()
        for old, new in ESPEAK_TO_KOKORO:
            phonemes = phonemes.replace(old, new)
        return phonemes
