"""Options of the IndexTTS engine: decoding, diffusion, emotion, precision and text settings,
validated once, and the part of them that changes the audio (`audio_key`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .gpt import EMOTIONS
from .sampling import SamplingOptions
from .voice import MAX_CLIP_SECONDS, MAX_SPEED, MIN_CLIP_SECONDS, MIN_SPEED


@dataclass(frozen=True)
class IndexTTSOptions:
    """Engine options. Everything but the last group changes the audio (and the fingerprint)."""

    # GPT decoding (infer_v2 defaults, except one beam)
    do_sample: bool = True
    top_k: int = 30
    top_p: float = 0.8
    temperature: float = 0.8
    repetition_penalty: float = 10.0
    max_mel_tokens: int = 1500
    seed: int | None = None
    """Seed for sampling and diffusion noise; each sentence starts from it, so the same text
    gives the same audio. None: fresh randomness every time."""

    # s2mel
    diffusion_steps: int = 25
    cfg_rate: float = 0.7

    # emotion: 8 weights in EMOTIONS order (happy, angry, sad, afraid, disgusted,
    # melancholic, surprised, calm); None keeps the emotion of the voice clip
    emotion: tuple[float, ...] | None = None
    emotion_strength: float = 1.0
    """infer_v2's emo_alpha for an explicit emotion vector: weights are scaled by it (0..1)."""

    speed: float = 1.0
    """Speech rate of IndexTTS-2.5 (its duration factor is 1 / speed; a voice's yaml `speed`
    wins); 1: the model's own pace. IndexTTS-2 has none."""

    # precision
    int8: bool = False
    """Use the int8 GPT core and diffusion step (export with --int8): about 3x faster decoding
    and 2.5x faster diffusion on CPUs with VNNI/AMX, slightly different audio."""

    speculative: int = 0
    """Draft this many GPT codes per fp32 pass with the int8 core (export with --int8; 0: off).
    Greedy: the fp32 codes. Sampling: the fp32 distribution, though a seed gives another draw."""

    # text
    language: str | None = None
    """Force "zh" or "en" text normalisation; None decides per text as the official code."""
    max_text_tokens_per_segment: int = 120
    interval_silence_ms: int = 200

    # no effect on audio
    threads: int = 0
    """ONNX Runtime intra-op threads per session (0: ONNX Runtime's default)."""
    verify_model: bool = True
    """Check the sha256 of every model file at start-up (size is always checked)."""
    min_clip_seconds: float = MIN_CLIP_SECONDS
    max_clip_seconds: float = MAX_CLIP_SECONDS

    def __post_init__(self) -> None:
        if self.emotion is not None:
            weights = tuple(float(x) for x in self.emotion)
            if len(weights) != len(EMOTIONS):
                raise ValueError(f"emotion needs {len(EMOTIONS)} weights ({', '.join(EMOTIONS)}), got {len(weights)}")
            if any(w < 0 for w in weights):
                raise ValueError("emotion weights must not be negative")
            object.__setattr__(self, "emotion", weights)
        if self.diffusion_steps < 1:
            raise ValueError("diffusion_steps must be at least 1")
        if self.cfg_rate < 0:
            raise ValueError("cfg_rate must not be negative")
        if self.speculative < 0:
            raise ValueError("speculative must not be negative")
        if self.speculative and self.int8:
            raise ValueError("speculative decoding verifies with the fp32 GPT; it does not combine with int8")
        if not MIN_SPEED <= self.speed <= MAX_SPEED:
            raise ValueError(f"speed must be from {MIN_SPEED} to {MAX_SPEED} (1 is the model's own pace)")
        if self.max_mel_tokens < 1:
            raise ValueError("max_mel_tokens must be at least 1")
        if self.max_text_tokens_per_segment < 1:
            raise ValueError("max_text_tokens_per_segment must be at least 1")
        self.sampling()  # validates the decoding options

    def sampling(self) -> SamplingOptions:
        return SamplingOptions(
            do_sample=self.do_sample,
            top_k=self.top_k,
            top_p=self.top_p,
            temperature=self.temperature,
            repetition_penalty=self.repetition_penalty,
            seed=self.seed,
        )

    def audio_key(self) -> dict[str, Any]:
        """The options that change audio (what the voice fingerprint covers)."""
        data = asdict(self)
        for name in ("threads", "verify_model", "min_clip_seconds", "max_clip_seconds"):
            data.pop(name)
        if data["emotion"] is not None:
            data["emotion"] = list(data["emotion"])
        else:
            data.pop("emotion_strength")  # only scales an explicit emotion vector
        if self.speed == 1.0:
            data.pop("speed")  # the default: keys made before the option existed stay valid
        if not self.do_sample:
            data.pop("speculative")  # greedy speculative decoding gives the fp32 codes
        return data
