"""IndexTTS-2.5 on ONNX Runtime: voice preparation and the per-sentence pipeline.

Per sentence (``infer_v2_5.IndexTTS2.infer_generator``): GPT codes at 25 Hz from the text ids
and the language id (``gpt25``) → codec decoder and length regulator at the speech rate
(``codec``) → the same flow-matching s2mel and BigVGAN stages as 2.0 (``s2mel``, ``vocoder``).

A voice (``_speaker_conditioning`` / ``_emotion_conditioning``): w2v-BERT features of the clip,
CAMPPlus style, reference mel and, unlike 2.0, the prompt condition regulated from the
w2v-BERT features themselves (2.0 first quantised them with MaskGCT's codec). It is stored as
a ``VoiceConditioning`` like a 2.0 voice, keyed by the model's manifest hash, with the
projected speaker row (1, 1, D) as ``speaker_latents``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .codec import SemanticDecoder
from .conditioning import AcousticConditioner, AcousticPrompt, load_mel_settings
from .features import reference_mel
from .gpt import EMOTION_GRAPH, GPTConfig, merge_emovec, trim_codes
from .gpt25 import GPT25Runtime
from .model import IndexTTSModel
from .s2mel import DEFAULT_CFG_RATE, DEFAULT_STEPS, GRAPH_S2MEL_ESTIMATOR, S2Mel
from .sampling import Sampler
from .vocoder import Vocoder
from .voice import ClipAudio, VoiceConditioning

MODEL_NAME = "indextts-2.5"
"""``config.json``'s ``model`` for an IndexTTS-2.5 folder (written by export/indextts25.py)."""


def is_indextts25(model: IndexTTSModel) -> bool:
    return model.config.get("model") == MODEL_NAME


@dataclass(frozen=True)
class Rendered25:
    """One sentence through every stage (the intermediate results are what parity checks)."""

    codes: np.ndarray
    features: np.ndarray
    condition: np.ndarray
    mel: np.ndarray
    wav: np.ndarray


class IndexTTS25Pipeline:
    """The 2.5 stages over one opened model folder (sessions created on first use)."""

    def __init__(self, model: IndexTTSModel, estimator_graph: str = GRAPH_S2MEL_ESTIMATOR) -> None:
        if not is_indextts25(model):
            raise ValueError(f"{model.path}: not an IndexTTS-2.5 model folder")
        cfg = model.config
        self.model = model
        arrays = {name: model.array(file) for name, file in cfg["gpt_arrays"].items()}
        self.gpt = GPT25Runtime(model.session("gpt"), arrays, GPTConfig.from_mapping(cfg["gpt"]), cfg["gpt"]["languages"])
        self.decoder = SemanticDecoder(model.session)
        self.s2mel = S2Mel(model.session, estimator_graph)
        self.vocoder = Vocoder(model.session)

    # -- voices -----------------------------------------------------------------------------

    def condition_voice(self, audio: ClipAudio, meta: dict | None = None) -> VoiceConditioning:
        """Everything synthesis needs from one clip, as infer_v2_5 computes it."""
        conditioner = AcousticConditioner(self.model.session, load_mel_settings(self.model.path))
        spk_cond_emb = conditioner.semantic_embedding(audio.speaker_16k)
        emotion_features = conditioner.semantic_embedding(audio.emotion_16k)
        style = conditioner.style(audio.speaker_16k)
        ref_mel = reference_mel(audio.speaker_22k, load_mel_settings(self.model.path))
        emotion = self.model.session(EMOTION_GRAPH)
        (emovec_speaker,) = emotion.run(None, {"features": spk_cond_emb})
        (emovec_emotion,) = emotion.run(None, {"features": emotion_features})
        return VoiceConditioning(
            speaker_latents=self.gpt.speaker_row(style),
            emovec_speaker=emovec_speaker,
            emovec_emotion=emovec_emotion,
            style=style,
            prompt_condition=conditioner.prompt_condition(spk_cond_emb, ref_mel.shape[2]),
            ref_mel=ref_mel,
            meta=dict(meta or {}),
        )

    # -- one sentence -----------------------------------------------------------------------

    def codes(
        self,
        voice: VoiceConditioning,
        text_ids: Sequence[int],
        language: str,
        sampler: Sampler,
        emovec: np.ndarray | None = None,
        max_new_tokens: int = 1500,
    ) -> np.ndarray:
        """Codes up to (not including) the stop token. `emovec` defaults to the voice's own
        (``merge_emovec`` of its speaker and emotion vectors, alpha 1)."""
        if emovec is None:
            emovec = merge_emovec(voice.emovec_speaker, voice.emovec_emotion, 1.0)
        prefix = self.gpt.conditioning_prefix(voice.speaker_latents, emovec)
        raw = self.gpt.generate25(prefix, text_ids, self.gpt.language_id(language), sampler, max_new_tokens)
        return trim_codes(raw, self.gpt.config.stop_mel_token)

    def render(
        self,
        voice: VoiceConditioning,
        codes: np.ndarray,
        duration_factor: float = 1.0,
        steps: int = DEFAULT_STEPS,
        cfg_rate: float = DEFAULT_CFG_RATE,
        noise: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> Rendered25:
        """Codes → features → condition → mel → waveform (float32 in [-1, 1])."""
        features = self.decoder.decode(codes)
        condition = self.decoder.regulate(features, duration_factor)
        mu = np.concatenate([voice.prompt_condition, condition], axis=1)
        mel = self.s2mel.sample(mu, voice.ref_mel, voice.style, steps=steps, cfg_rate=cfg_rate, noise=noise, rng=rng)
        return Rendered25(codes=codes, features=features, condition=condition, mel=mel, wav=self.vocoder(mel))


def acoustic_prompt(voice: VoiceConditioning) -> AcousticPrompt:
    """The s2mel prompt of a prepared voice (no w2v-BERT features are kept)."""
    return AcousticPrompt(
        spk_cond_emb=np.zeros((1, 0, 1024), dtype=np.float32),
        style=voice.style,
        prompt_condition=voice.prompt_condition,
        ref_mel=voice.ref_mel,
    )
