"""Export IndexTTS-2.5's GPT (its UnifiedVoice) from the official `gpt.pth` to ONNX.

2.5 keeps 2.0's GPT-2 core and its emotion conformer + perceiver, so two graphs are 2.0's
wrappers run on the 2.5 module (``export.gpt.GPTCore`` and ``EmotionConditioning``):

``gpt.onnx``
    the GPT-2 core with its KV cache, ``final_norm`` and ``mel_head`` (same inputs/outputs);
``gpt_emotion_conditioning.onnx``
    w2v-BERT features → ``get_emovec`` (the emotion vector; merged per request in numpy).

What changed around the core is assembled in numpy from arrays (``GPT25_ARRAYS``), as
``engines/indextts/gpt25.py`` documents: the speaker is no longer a 32-latent perceiver but
``spk_emb_proj`` of the CAMPPlus style (a 192 → model_dim linear: two arrays, no graph); the
prefix is ``[speaker + emovec, 0, 0]`` (no speed rows); every text position adds the language
embedding; codes are embedded at mel position k for the k-th (start_mel at 0). The codes
are 25 Hz; ``export.codec25`` exports the decoder that brings them back to 50 Hz features.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .gpt import _plain, as_array, core_config, embedding_arrays

GPT25_ARRAYS = {
    "text_embedding": "gpt_text_embedding.npy",
    "text_pos_embedding": "gpt_text_pos_embedding.npy",
    "mel_embedding": "gpt_mel_embedding.npy",
    "mel_pos_embedding": "gpt_mel_pos_embedding.npy",
    "lang_embedding": "gpt_lang_embedding.npy",
    "speaker_projection_weight": "gpt_speaker_projection_weight.npy",
    "speaker_projection_bias": "gpt_speaker_projection_bias.npy",
}


def load_unified_voice25(gpt_cfg: Mapping[str, Any], checkpoint: str | os.PathLike[str]):
    """2.5's UnifiedVoice with the official weights, eval mode, as infer_v2_5 prepares it."""
    from indextts25.gpt.model_v2 import UnifiedVoice
    from indextts25.utils.checkpoint import load_checkpoint

    model = UnifiedVoice(**_plain(gpt_cfg))
    load_checkpoint(model, os.fspath(checkpoint))
    model.eval()
    model.post_init_gpt2_config()
    return model


def runtime_arrays25(model) -> dict[str, np.ndarray]:
    return {
        **embedding_arrays(model),
        "lang_embedding": as_array(model.lang_embedding.weight),
        "speaker_projection_weight": as_array(model.spk_emb_proj.weight),
        "speaker_projection_bias": as_array(model.spk_emb_proj.bias),
    }


def save_runtime_arrays25(model, out_dir: Path) -> None:
    for name, array in runtime_arrays25(model).items():
        np.save(out_dir / GPT25_ARRAYS[name], array, allow_pickle=False)


def runtime_config25(gpt_cfg: Mapping[str, Any], model) -> dict[str, Any]:
    """The GPT facts the runtime needs (JSON-serialisable), plus the language table."""
    from indextts25.utils.tokenizer import LANGUAGE_DICT

    return {**core_config(gpt_cfg, model), "languages": dict(LANGUAGE_DICT)}
