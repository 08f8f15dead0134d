"""The voice catalogue: what `info` advertises, which voice a request gets, and which voice
each fallback engine speaks in for a given language."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice

from . import __version__
from .engines.base import Engine, Voice

_LOGGER = logging.getLogger(__name__)

PROGRAM_NAME = "indextts"


LANGUAGE_NAMES = {"zh": "Chinese", "ja": "Japanese", "ko": "Korean", "en": "English"}

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Kana before Han: Japanese text is full of Han characters too.
_SCRIPTS = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
    ("zh", HAN),
)


def base_language(code: str) -> str:
    """`zh_CN` → `zh`, `en-US` → `en`."""
    return code.replace("-", "_").split("_")[0].lower()


def script_language(text: str) -> str | None:
    """The language a text's script gives away (`zh`, `ja`, `ko`), or None for Latin and
    other text, which any voice can at least pronounce."""
    return next((language for language, script in _SCRIPTS if script.search(text)), None)


def language_name(code: str) -> str:
    return f"{LANGUAGE_NAMES.get(code, code)} ({code})"


LOGGED_NAME_CHARS = 80
"""How much of a name a client sent goes into a log line (a 100 KB voice
name made a 100 KB line)."""


def for_log(name: str) -> str:
    """A name a client sent, as a log line shows it: quoted, and cut with its length when long."""
    if len(name) <= LOGGED_NAME_CHARS:
        return repr(name)
    return f"{name[:LOGGED_NAME_CHARS]!r}... ({len(name)} characters)"


def speaks(voice: Voice, language: str) -> bool:
    return any(base_language(code) == language for code in voice.languages)


class VoiceCatalogue:
    def __init__(
        self,
        engines: Mapping[str, Engine],
        default_voice: str,
        fallback_voices: Mapping[str, str] | None = None,
    ) -> None:
        """`fallback_voices` maps a language (`zh`, `en`) to the voice name a fallback engine
        should use for it; a name belongs to exactly one engine, so one map serves them all."""
        self.engines = engines
        self.default_voice_name = default_voice
        self.fallback_voices = {base_language(lang): name for lang, name in (fallback_voices or {}).items()}
        if self.find(default_voice) is None:
            known = ", ".join(voice.name for voice in self.voices())
            raise ValueError(f"default voice {default_voice!r} does not exist; known voices: {known}")

    def voices(self) -> list[Voice]:
        # Asked anew each time: a voices folder may gain or lose clips while the server runs.
        # A name two engines offer (a remote server's copy of a local voice) is the first
        # engine's; `twin` finds the others' for the chain.
        voices: dict[str, Voice] = {}
        for engine in self.engines.values():
            for voice in engine.voices():
                voices.setdefault(voice.name, voice)
        return list(voices.values())

    def twin(self, engine_name: str, voice: Voice) -> Voice | None:
        """Another engine's voice of the same name, e.g. the local copy of a remote voice."""
        engine = self.engines.get(engine_name)
        if engine is None or engine_name == voice.engine:
            return None
        return next((v for v in engine.voices() if v.name == voice.name), None)

    def find(self, name: str) -> Voice | None:
        for voice in self.voices():
            if voice.name == name:
                return voice
        return None

    @property
    def default_voice(self) -> Voice:
        voice = self.find(self.default_voice_name)
        if voice is None:  # its clip was removed after start-up
            raise LookupError(f"default voice {self.default_voice_name!r} is no longer available")
        return voice

    def resolve(self, name: str | None) -> Voice:
        """The voice a request asked for; the default voice when it named none or an unknown one."""
        if name:
            voice = self.find(name)
            if voice is not None:
                return voice
            _LOGGER.warning("Unknown voice %s requested; using the default voice %r", for_log(name), self.default_voice_name)
        return self.default_voice

    def fallback_voice(self, engine_name: str, language: str, last_resort: bool) -> Voice | None:
        """The voice `engine_name` should speak `language` in, or None to skip that engine.

        A voice mapped to the language (`fallback_voices`) routes the fallback: engines other
        than the mapped voice's own are skipped, so by default English goes straight to the
        bundled English voice while Chinese asks Sambert. Without a mapping, the engine's own
        choice for the language, else its first voice of that language. With `last_resort`,
        the engine's first voice of any language: a voice with an accent is better than
        silence in a house waiting for its announcement. The chain does not set it for text in
        a script the voice cannot read (an English voice reads each Han character as "Chinese
        letter")."""
        engine = self.engines.get(engine_name)
        if engine is None:
            return None
        voices = list(engine.voices())
        lang = base_language(language)
        mapped = self.find(self.fallback_voices[lang]) if lang in self.fallback_voices else None
        if mapped is not None:
            if mapped.engine == engine_name:
                return mapped
            if not last_resort:
                return None
        chosen = engine.voice_for_language(lang)
        if chosen is None:
            chosen = next((v for v in voices if speaks(v, lang)), None)
        if chosen is None and last_resort and voices:
            chosen = voices[0]
        return chosen

    def info(self) -> Info:
        voices = self.voices()
        return Info(
            tts=[
                TtsProgram(
                    name=PROGRAM_NAME,
                    description="IndexTTS2 voice cloning on CPU, with cache and fallback voices",
                    attribution=Attribution(name="wyoming-indextts", url="https://github.com/index-tts/index-tts"),
                    installed=True,
                    version=__version__,
                    voices=[_tts_voice(voice) for voice in voices],
                    supports_synthesize_streaming=True,
                )
            ]
        )


def _tts_voice(voice: Voice) -> TtsVoice:
    return TtsVoice(
        name=voice.name,
        description=voice.description or voice.name,
        attribution=Attribution(name=voice.attribution_name, url=voice.attribution_url),
        installed=True,
        version=voice.version,
        languages=list(voice.languages),
    )

