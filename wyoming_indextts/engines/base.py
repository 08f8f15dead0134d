"""The contract every engine keeps, so the synthesizer can chain them blindly."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..audio import AudioFormat


# Engine names: the keys of the engine table, the names `--fallback` and `--deadline` take.
INDEXTTS = "indextts"
SAMBERT = "sambert"
KOKORO = "kokoro"
PIPER = "piper"

BUNDLED_ENGINES = (KOKORO, PIPER)
"""Local voices that end every chain: the bundled Mandarin voices, then the English one."""

LAST_RESORT = PIPER
"""The chain's last step, which speaks any Latin-script text when nothing else could."""


SPEED_ENGINES = (PIPER, KOKORO)
"""Engines whose voices take a speaking rate per request (`at_speed`): both models have a
duration input; IndexTTS, Sambert and remote voices speak at their own pace."""


class EngineError(Exception):
    """A synthesis failure, with a message a person can act on."""


@dataclass(frozen=True)
class Voice:
    """One voice an engine offers, as advertised in Wyoming's `info`."""

    name: str
    """The id a client sends in `synthesize.voice.name`."""

    engine: str
    """Name of the engine that speaks it (`piper`, `sambert`, `indextts`)."""

    sample_rate: int
    """Rate of the int16 mono PCM the engine yields for this voice."""

    languages: tuple[str, ...]
    description: str = ""
    version: str | None = None
    attribution_name: str = ""
    attribution_url: str = ""

    fingerprint: str = ""
    """Changes whenever the same text could sound different: model files, the voice's own
    files, and every engine option that changes audio. Part of the cache key, so a changed
    voice never serves old audio."""

    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    """Engine-private facts (a file path, a cloud voice id); not advertised."""

    @property
    def output_format(self) -> AudioFormat:
        """The format of a response in this voice, whichever engine ends up speaking it."""
        return AudioFormat(rate=self.sample_rate)


class Engine(Protocol):
    """A speech engine. Implementations are used from worker threads, never the event loop."""

    name: str

    def voices(self) -> Sequence[Voice]:
        """The voices this engine can speak now."""

    def voice_for_language(self, language: str) -> Voice | None:
        """The engine's own pick for a language (a base code such as `zh`) when the chain falls
        back to it, or None for no preference: the catalogue then takes its first voice that
        speaks the language."""

    def synthesize(self, text: str, voice: Voice, *, opening: bool = True) -> Iterator[bytes]:
        """Speak one sentence: yields int16 little-endian mono PCM at `voice.sample_rate`.

        Yielding early pieces lets the chain measure time to first audio; an engine that
        renders in one go yields once. `opening` is True for the first sentence of a response,
        where the listener is waiting: an engine may spend some throughput there to start
        sooner. Raises EngineError (or anything else) on failure.
        """

    def close(self) -> None:
        """Release sessions, sockets and threads."""


def at_speed(voice: Voice, speed: float) -> Voice:
    """The voice speaking `speed` times faster (an engine of SPEED_ENGINES reads it with
    `speed_of`). The speed joins the fingerprint, so a faster render has a cache key of its
    own; at 1.0 the voice is returned as it is, so its key stays what Wyoming uses."""
    if speed == 1.0:
        return voice
    return replace(voice, fingerprint=f"{voice.fingerprint}|speed={speed!r}", extra={**voice.extra, "speed": repr(speed)})


def speed_of(voice: Voice) -> float:
    return float(voice.extra.get("speed", 1.0))
