"""Voice preparation for the IndexTTS engine: each clip of the voices folder → its stored
conditioning (computed once with the conditioning graphs, which are released after) and the
`Voice` the server lists."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..base import INDEXTTS, Voice
from .conditioning import AcousticConditioner, load_mel_settings
from .features import reference_mel
from .format import (
    CAMPPLUS_GRAPH,
    EMOTION_GRAPH,
    INDEXTTS_25,
    MAX_PROMPT_SECONDS,
    MAX_PROMPT_SECONDS_FIELD,
    PROMPT_REGULATOR_GRAPH,
    SEMANTIC_CODEC_GRAPH,
    SPEAKER_GRAPH,
    W2V_BERT_GRAPH,
)
from .gpt import emotion_indices
from .model import IndexTTSModel, ModelError
from .options import IndexTTSOptions
from .voice import (
    CONDITIONING_FORMAT,
    ClipAudio,
    ConditioningStore,
    VoiceConditioning,
    VoiceError,
    VoiceSpec,
    check_clip,
    prepare_clip_audio,
    read_clip,
)

_LOGGER = logging.getLogger(__name__)

# The engine field of every prepared voice and of its conditioning's cache key.
ENGINE_NAME = INDEXTTS

CONDITIONING_GRAPHS = (
    W2V_BERT_GRAPH,
    SEMANTIC_CODEC_GRAPH,
    CAMPPLUS_GRAPH,
    PROMPT_REGULATOR_GRAPH,
    SPEAKER_GRAPH,
    EMOTION_GRAPH,
)
"""Graphs needed only to prepare a voice; released once every voice is prepared."""


@dataclass
class LoadedVoice:
    voice: Voice
    spec: VoiceSpec
    conditioning: VoiceConditioning
    emotion_rows: list[int]
    """Rows of the emotion matrix nearest the voice's style (`gpt.emotion_indices`)."""



def _fingerprint(model: IndexTTSModel, spec: VoiceSpec, options: IndexTTSOptions) -> str:
    data = {
        "engine": ENGINE_NAME,
        "model": model.fingerprint,
        "clip": spec.clip_sha256,
        "conditioning": CONDITIONING_FORMAT,
        "options": options.audio_key(),
        **({"speed": spec.speed} if spec.speed is not None else {}),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def condition_voice(model: IndexTTSModel, conditioner: AcousticConditioner, clip: Path, options: IndexTTSOptions) -> VoiceConditioning:
    """Everything synthesis needs from one clip (raises VoiceError for a bad clip)."""
    samples, rate = read_clip(clip, options.max_clip_seconds)
    check_clip(clip, samples, rate, options.min_clip_seconds)
    audio = prepare_clip_audio(samples, rate, float(model.config.get(MAX_PROMPT_SECONDS_FIELD, MAX_PROMPT_SECONDS)))
    meta = {"clip": clip.name, "rate": rate, "seconds": round(samples.shape[0] / rate, 3)}
    if model.manifest.model == INDEXTTS_25:
        return replace(condition_voice25(model, conditioner, audio), meta=meta)
    prompt = conditioner.prepare(audio.speaker_16k, audio.speaker_22k)
    emotion_features = conditioner.semantic_embedding(audio.emotion_16k)
    speaker = model.session(SPEAKER_GRAPH)
    emotion = model.session(EMOTION_GRAPH)
    (latents,) = speaker.run(None, {"features": prompt.spk_cond_emb})
    (emovec_speaker,) = emotion.run(None, {"features": prompt.spk_cond_emb})
    (emovec_emotion,) = emotion.run(None, {"features": emotion_features})
    return VoiceConditioning(
        speaker_latents=latents,
        emovec_speaker=emovec_speaker,
        emovec_emotion=emovec_emotion,
        style=prompt.style,
        prompt_condition=prompt.prompt_condition,
        ref_mel=prompt.ref_mel,
        meta=meta,
    )


def condition_voice25(model: IndexTTSModel, conditioner: AcousticConditioner, audio: ClipAudio) -> VoiceConditioning:
    """IndexTTS-2.5 (``_speaker_conditioning`` / ``_emotion_conditioning`` of infer_v2_5): the
    prompt is regulated from the w2v-BERT features themselves (no MaskGCT codec), and the GPT's
    speaker conditioning is the projected CAMPPlus style, one row, in `speaker_latents`."""
    spk_cond_emb = conditioner.semantic_embedding(audio.speaker_16k)
    style = conditioner.style(audio.speaker_16k)
    ref_mel = reference_mel(audio.speaker_22k, load_mel_settings(model.path))
    emotion = model.session(EMOTION_GRAPH)
    (emovec_speaker,) = emotion.run(None, {"features": spk_cond_emb})
    (emovec_emotion,) = emotion.run(None, {"features": conditioner.semantic_embedding(audio.emotion_16k)})
    return VoiceConditioning(
        speaker_latents=speaker_row(model, style),
        emovec_speaker=emovec_speaker,
        emovec_emotion=emovec_emotion,
        style=style,
        prompt_condition=conditioner.prompt_condition(spk_cond_emb, ref_mel.shape[2]),
        ref_mel=ref_mel,
    )


def speaker_row(model: IndexTTSModel, style: np.ndarray) -> np.ndarray:
    """``spk_emb_proj`` of the CAMPPlus style (1, 192) → (1, 1, D): what a prepared 2.5 voice
    stores in place of 2.0's 32 speaker latents."""
    arrays = model.config["gpt_arrays"]
    weight = model.array(arrays["speaker_projection_weight"])
    bias = model.array(arrays["speaker_projection_bias"])
    style = np.asarray(style, dtype=np.float32).reshape(1, -1)
    return (style @ weight.T + bias)[None].astype(np.float32)


def prepare_voices(
    model: IndexTTSModel, specs: Sequence[VoiceSpec], store: ConditioningStore, options: IndexTTSOptions
) -> tuple[list[LoadedVoice], list[str]]:
    """Load every voice's conditioning from the store, computing (and storing) the missing ones.

    The conditioning graphs are opened only if some voice needs preparing, and released after.
    """
    loaded: list[LoadedVoice] = []
    problems: list[str] = []
    conditioner: AcousticConditioner | None = None
    try:
        for spec in specs:
            conditioning = store.load(spec.clip_sha256)
            if conditioning is None:
                if conditioner is None:
                    conditioner = AcousticConditioner(model.session, load_mel_settings(model.path))
                try:
                    _LOGGER.info("Preparing voice %s from %s", spec.name, spec.clip)
                    conditioning = condition_voice(model, conditioner, spec.clip, options)
                except VoiceError as err:
                    _LOGGER.warning("Voice %s skipped: %s", spec.name, err)
                    problems.append(str(err))
                    continue
                except ModelError:
                    raise
                except Exception as err:  # noqa: BLE001 - one odd clip must not stop the others
                    _LOGGER.exception("Voice %s skipped: preparing %s failed", spec.name, spec.clip)
                    problems.append(f"{spec.clip}: preparing the voice failed ({err})")
                    continue
                try:
                    store.save(spec.clip_sha256, conditioning)
                except OSError as err:
                    _LOGGER.warning("Voice %s: cannot store its conditioning (%s); it is prepared again next start", spec.name, err)
            voice = Voice(
                name=spec.name,
                engine=ENGINE_NAME,
                sample_rate=model.speech.sample_rate,
                languages=spec.languages,
                description=spec.description,
                version=str(model.config.get("version") or "") or None,
                attribution_name="IndexTTS2 (bilibili Index team)",
                attribution_url="https://github.com/index-tts/index-tts",
                fingerprint=_fingerprint(model, spec, options),
                extra={"clip": str(spec.clip)},
            )
            rows = emotion_indices(
                conditioning.style, model.array(model.config["spk_matrix"]), [int(n) for n in model.config["emo_num"]]
            )
            loaded.append(LoadedVoice(voice, spec, conditioning, rows))
    finally:
        if conditioner is not None:
            conditioner.close()
        opened = any(model.is_loaded(graph) for graph in CONDITIONING_GRAPHS)
        for graph in CONDITIONING_GRAPHS:
            model.release(graph)
        if opened:
            release_memory()
    return loaded, problems


def release_memory() -> None:
    """Give freed heap back to the OS (glibc keeps it otherwise): after the conditioning
    sessions are dropped, serving should not carry their high-water mark."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
