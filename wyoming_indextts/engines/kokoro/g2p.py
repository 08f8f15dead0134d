"""Text → Kokoro-82M v1.0 phonemes for Mandarin, English words inside it spoken as English.

Three steps, each from an offline registry package:
- numbers, dates, times, units and symbols are written out by WeTextProcessing's grammars
  (`wyoming_indextts.text.normalize`, wetext with its fixes): misaki alone reads "3:30" and
  "°C" as noise;
- runs of Chinese go through misaki's `ZHG2P` (jieba words, pypinyin tones → Kokoro's IPA
  with tone arrows), the G2P Kokoro's Mandarin voices were trained with;
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

import jieba
from misaki.zh import ZHG2P
from piper.phonemize_espeak import EspeakPhonemizer

from ...text import normalize
from ...voices import HAN

LATIN_WORDS = re.compile(r"[A-Za-z][A-Za-z'’-]*(?: +[A-Za-z][A-Za-z'’-]*)*")
PUNCTUATION_SPACING = re.compile(r" *([,.!?;:]) *")
ENGLISH_VOICE = "en-us"

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
        self._zh = ZHG2P()
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

    def _mandarin(self, text: str) -> str:
        if not text.strip():
            return text
        return self._zh(text)[0]

    def _english(self, words: str) -> str:
        sentences = self._espeak.phonemize(ENGLISH_VOICE, words)
        # Piper's phonemizer hands out decomposed (NFD) characters; the table is composed.
        phonemes = unicodedata.normalize("NFC", " ".join("".join(chars) for chars in sentences)).strip()
        for old, new in ESPEAK_TO_KOKORO:
            phonemes = phonemes.replace(old, new)
        return phonemes
