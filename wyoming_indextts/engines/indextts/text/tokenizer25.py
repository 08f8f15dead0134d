"""The IndexTTS-2.5 text tokenizer without torch: a multilingual tiktoken BPE with Whisper's
special tokens, ported from indextts25-inference 0.2.0 (`indextts25/utils/tokenizer.py`).

The model folder's ``<name>.tiktoken`` holds one ``base64(token) rank`` line per BPE piece;
the special tokens (languages, audio events, emotions, SPECIAL_TOKEN_n, TTS marks,
timestamps) follow in the order of the tables below, which fixes their ids: keep the tables
verbatim. The GPT reads each segment as ``<|lang|> text`` and takes the language again as an
id of its own (`language_id`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import tiktoken

LANGUAGES: dict[str, str] = {
    "en": "english",
    "zh": "chinese",
    "de": "german",
    "es": "spanish",
    "ru": "russian",
    "ko": "korean",
    "fr": "french",
    "ja": "japanese",
    "pt": "portuguese",
    "tr": "turkish",
    "pl": "polish",
    "ca": "catalan",
    "nl": "dutch",
    "ar": "arabic",
    "sv": "swedish",
    "it": "italian",
    "id": "indonesian",
    "hi": "hindi",
    "fi": "finnish",
    "vi": "vietnamese",
    "he": "hebrew",
    "uk": "ukrainian",
    "el": "greek",
    "ms": "malay",
    "cs": "czech",
    "ro": "romanian",
    "da": "danish",
    "hu": "hungarian",
    "ta": "tamil",
    "no": "norwegian",
    "th": "thai",
    "ur": "urdu",
    "hr": "croatian",
    "bg": "bulgarian",
    "lt": "lithuanian",
    "la": "latin",
    "mi": "maori",
    "ml": "malayalam",
    "cy": "welsh",
    "sk": "slovak",
    "te": "telugu",
    "fa": "persian",
    "lv": "latvian",
    "bn": "bengali",
    "sr": "serbian",
    "az": "azerbaijani",
    "sl": "slovenian",
    "kn": "kannada",
    "et": "estonian",
    "mk": "macedonian",
    "br": "breton",
    "eu": "basque",
    "is": "icelandic",
    "hy": "armenian",
    "ne": "nepali",
    "mn": "mongolian",
    "bs": "bosnian",
    "kk": "kazakh",
    "sq": "albanian",
    "sw": "swahili",
    "gl": "galician",
    "mr": "marathi",
    "pa": "punjabi",
    "si": "sinhala",
    "km": "khmer",
    "sn": "shona",
    "yo": "yoruba",
    "so": "somali",
    "af": "afrikaans",
    "oc": "occitan",
    "ka": "georgian",
    "be": "belarusian",
    "tg": "tajik",
    "sd": "sindhi",
    "gu": "gujarati",
    "am": "amharic",
    "yi": "yiddish",
    "lo": "lao",
    "uz": "uzbek",
    "fo": "faroese",
    "ht": "haitian creole",
    "ps": "pashto",
    "tk": "turkmen",
    "nn": "nynorsk",
    "mt": "maltese",
    "sa": "sanskrit",
    "lb": "luxembourgish",
    "my": "myanmar",
    "bo": "tibetan",
    "tl": "tagalog",
    "mg": "malagasy",
    "as": "assamese",
    "tt": "tatar",
    "haw": "hawaiian",
    "ln": "lingala",
    "ha": "hausa",
    "ba": "bashkir",
    "jw": "javanese",
    "su": "sundanese",
    "yue": "cantonese",
    "minnan": "minnan",
    "wuyu": "wuyu",
    "dialect": "dialect",
    "zh/en": "zh/en",
    "en/zh": "en/zh",
    "common": "common",
}

LANGUAGE_IDS: dict[str, int] = {lang: index for index, lang in enumerate(LANGUAGES)}
FALLBACK_LANGUAGE = "common"

AUDIO_EVENTS = ("ASR", "AED", "SER", "Speech", "/Speech", "BGM", "/BGM", "Laughter", "/Laughter", "Applause", "/Applause")
EMOTIONS = ("HAPPY", "SAD", "ANGRY", "NEUTRAL")
TTS_MARKS = ("TTS/B", "TTS/O", "TTS/Q", "TTS/A", "TTS/CO", "TTS/CL", "TTS/H", *(f"TTS/SP{i:02d}" for i in range(1, 14)))
PRE_TOKENIZER = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# The official get_encoding's default: every language in the table has its token.
NUM_LANGUAGES = 99


def special_tokens(n_vocab: int, num_languages: int = NUM_LANGUAGES) -> dict[str, int]:
    """The special tokens and their ids, numbered on from the BPE's `n_vocab` pieces."""
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{lang}|>" for lang in list(LANGUAGES)[:num_languages]),
        *(f"<|{event}|>" for event in AUDIO_EVENTS),
        *(f"<|{emotion}|>" for emotion in EMOTIONS),
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
        *(f"<|SPECIAL_TOKEN_{i}|>" for i in range(1, 31)),  # pronunciation annotations
        *(f"<|{mark}|>" for mark in TTS_MARKS),
        *(f"<|{i * 0.02:.2f}|>" for i in range(1501)),
    ]
    return {token: n_vocab + index for index, token in enumerate(specials)}


def language_id(lang: str) -> int:
    """The GPT's language id: the index of `lang` in the table, ``common`` for any other."""
    return LANGUAGE_IDS.get(lang.lower(), LANGUAGE_IDS[FALLBACK_LANGUAGE])


def language_prefix(lang: str) -> str:
    """What each segment starts with, as the official infer writes it: ``<|zh|> ``."""
    return f"<|{lang.lower()}|> "


@dataclass(frozen=True)
class Tokenizer25:
    """Text -> token ids for an IndexTTS-2.5 model. Safe to share between threads (tiktoken's
    encoder is)."""

    encoding: tiktoken.Encoding

    @classmethod
    def load(cls, path: Path) -> Tokenizer25:
        """Read a ``.tiktoken`` BPE file (the model folder's
        ``multilingual_zh_ja_yue_char_del.tiktoken``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"IndexTTS-2.5 tokenizer not found: {path} (expected a .tiktoken file)")
        ranks: dict[bytes, int] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line:
                continue
            try:
                token, rank = line.split()
                ranks[base64.b64decode(token, validate=True)] = int(rank)
            except ValueError as err:
                raise ValueError(f"{path}:{number}: not a 'base64-token rank' line ({err})") from err
        specials = special_tokens(len(ranks))
        return cls(
            tiktoken.Encoding(
                name=path.name,
                explicit_n_vocab=len(ranks) + len(specials),
                pat_str=PRE_TOKENIZER,
                mergeable_ranks=ranks,
                special_tokens=specials,
            )
        )

    @property
    def vocab_size(self) -> int:
        return self.encoding.n_vocab

    def count(self, text: str) -> int:
        """Tokens in `text`, special tokens written in it counted as one each."""
        return len(self.encoding.encode(text, allowed_special="all"))

    def encode(self, text: str, lang: str) -> list[int]:
        """The ids of one prepared segment, language token first, as the official infer
        encodes them (no stop token: the GPT's input builder adds it)."""
        return self.encoding.encode(language_prefix(lang) + text, allowed_special="all")
