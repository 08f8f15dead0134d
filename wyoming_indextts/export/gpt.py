"""Export IndexTTS-2's GPT (UnifiedVoice v2) from the official `gpt.pth` to ONNX.

Graphs and why the split is what it is
--------------------------------------
UnifiedVoice has 866 M parameters at the published size, but only the GPT-2 core (472 M) and
its small heads run for every sentence; the two conformer+perceiver stacks (178 M + 158 M)
only turn a reference clip into conditioning. So:

``gpt_speaker_conditioning.onnx``
    w2v-BERT features (1, T, 1024) → speaker latents (1, 32, model_dim): the speaker
    conformer + perceiver, i.e. ``UnifiedVoice.get_conditioning``.
``gpt_emotion_conditioning.onnx``
    w2v-BERT features (1, T, 1024) → emotion vector (1, model_dim): the emotion conformer +
    perceiver followed by ``emovec_layer`` and ``emo_layer``, i.e. ``UnifiedVoice.get_emovec``.
    infer_v2 runs it twice per request (speaker clip and emotion clip) and merges the two
    with ``base + alpha * (emo - base)`` (``merge_emovec``).

Both are run once per voice when the voice is prepared, their outputs are cached on disk,
and their sessions are released: serving never holds these 336 M parameters.

``gpt.onnx``
    The GPT-2 core with an explicit KV cache: ``inputs_embeds`` (B, S, model_dim),
    ``attention_mask`` (B, P+S) int64 (1: a real position, 0: padding nobody attends to),
    ``logit_positions`` (K,) int64 (which of the S positions get logits) plus
    ``past_key_<i>`` / ``past_value_<i>`` (B, heads, P, head_dim) for every layer →
    ``hidden`` (B, S, model_dim) after GPT-2's ``ln_f`` *and* UnifiedVoice's ``final_norm``
    (the official code applies both), ``logits`` (B, number_mel_codes) of the last position
    through ``mel_head``, ``present_key_<i>`` / ``present_value_<i>`` (B, heads, P+S,
    head_dim) and ``position_logits`` (B, K, number_mel_codes). One graph serves five uses:

    * prefill: the whole ``[conditioning][text][start_mel]`` prompt with P = 0;
    * decode step: one mel token with the cache of everything before it;
    * forward to latents: ``[conditioning][text][mel codes]`` with P = 0, reading ``hidden``;
    * batched decode steps: sentences whose caches differ in length, left-padded to one
      length and masked (``attention_mask``);
    * speculative verification: k drafted tokens in one pass with the cache, reading the
      logits of every one of them (``position_logits``).

    Three separate graphs (prefill, decode, latents) would each embed the same 1.9 GB of
    GPT-2 weights; ONNX Runtime would load them three times. One graph keeps one copy on disk
    and in memory. The prefill/latent pass differs from a decode step only in S and P, which
    are dynamic axes.

Everything around the core is a table lookup or a few additions, done in numpy at run time
from ``.npy`` files written beside the graphs, so that the runtime reproduces the official
assembly exactly (see ``engines/indextts/gpt.py``):

* ``text_embedding``, ``text_pos_embedding``, ``mel_embedding``, ``mel_pos_embedding`` and
  ``speed_embedding`` (the two "duration" rows appended after the 32 speaker latents);
* the conditioning prefix ``[speaker latents + emovec, speed[1], speed[0]]``;
* the emotion-vector path of infer_v2: ``feat1`` (speaker matrix, compared with the CAMPPlus
  style by cosine) and ``feat2`` (emotion matrix) split by ``emo_num``, the weighted sum and
  ``emovec_mat + (1 - sum(weights)) * emovec``.

The emotion vector merge and the 8-emotion path therefore have no graph of their own: they
are O(model_dim) arithmetic on cached vectors, and keeping them in numpy lets the options
(emotion weights, strength) change per request without touching a session.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..engines.indextts.format import EMOTION_GRAPH, GPT_GRAPH, GPT_INT8_GRAPH, SPEAKER_GRAPH, graph_file
from . import official_package

_LOGGER = logging.getLogger(__name__)

OPSET = 17


# Arrays the runtime reads beside the graphs (name → file).
GPT_ARRAYS = {
    "text_embedding": "gpt_text_embedding.npy",
    "text_pos_embedding": "gpt_text_pos_embedding.npy",
    "mel_embedding": "gpt_mel_embedding.npy",
    "mel_pos_embedding": "gpt_mel_pos_embedding.npy",
    "speed_embedding": "gpt_speed_embedding.npy",
}

# The official code passes `spk_cond_emb.shape[-1]` (the 1024 feature width, not the frame
# count) as the conditioning length; every frame of a clip cut to 15 s is therefore valid.
# The wrappers pass the same constant so that the graphs mask exactly what the official code
# masks, for any T.
_OFFICIAL_COND_LENGTH = 1024


def build_unified_voice(gpt_cfg: Mapping[str, Any]):
    """The official UnifiedVoice built from the `gpt:` section of config.yaml (random weights)."""
    official_package()
    from indextts.gpt.model_v2 import UnifiedVoice

    return UnifiedVoice(**_plain(gpt_cfg))


def load_unified_voice(gpt_cfg: Mapping[str, Any], checkpoint: str | os.PathLike[str]):
    """UnifiedVoice with the official weights, in eval mode, as infer_v2 prepares it.

    Same weights as the official `load_checkpoint`, loaded without its memory cost: that one
    holds a randomly initialised model and the whole checkpoint at once (7 GB at the published
    size). Here the model is built on the meta device (no storage, no initialisation) and the
    memory-mapped checkpoint tensors become its parameters (`assign=True`): file-backed pages
    that each graph export reads in as it needs them and the kernel can drop again.
    """
    with torch.device("meta"):
        model = build_unified_voice(gpt_cfg)
    state = torch.load(os.fspath(checkpoint), map_location="cpu", mmap=True, weights_only=True)
    state = state["model"] if "model" in state else state
    expected = model.state_dict()
    state = {  # a checkpoint stored in another precision is cast, as load_state_dict's copy would
        key: value.to(expected[key].dtype) if key in expected and value.dtype != expected[key].dtype else value
        for key, value in state.items()
    }
    model.load_state_dict(state, strict=True, assign=True)
    left = [name for name, tensor in (*model.named_parameters(), *model.named_buffers()) if tensor.is_meta]
    if left:
        raise ValueError(f"{len(left)} tensors of the GPT are not in the checkpoint (first: {left[0]})")
    model.eval()
    model.post_init_gpt2_config(use_deepspeed=False, kv_cache=True, half=False)
    return model


def _plain(cfg: Any) -> Any:
    """OmegaConf/dict/list → plain python containers."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, (DictConfig, ListConfig)):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is part of the export extra
        pass
    if isinstance(cfg, Mapping):
        return {k: _plain(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [_plain(v) for v in cfg]
    return cfg


# --------------------------------------------------------------------------------------------
# Wrapper modules that are exported
# --------------------------------------------------------------------------------------------


class SpeakerConditioning(nn.Module):
    """features (1, T, 1024) → speaker latents (1, 32, model_dim)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        lengths = torch.full((features.shape[0],), _OFFICIAL_COND_LENGTH, dtype=torch.long)
        # inference_speech: get_conditioning(speech_condition.transpose(1, 2), cond_lengths)
        return self.model.get_conditioning(features.transpose(1, 2), lengths)


class EmotionConditioning(nn.Module):
    """features (1, T, 1024) → emotion vector (1, model_dim) (``get_emovec``)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        lengths = torch.full((features.shape[0],), _OFFICIAL_COND_LENGTH, dtype=torch.long)
        return self.model.get_emovec(features, lengths)


class GPTCore(nn.Module):
    """The GPT-2 stack of UnifiedVoice with explicit past/present key-value tensors.

    Mirrors transformers' GPT2Model forward for ``inputs_embeds`` (the position embedding is
    UnifiedVoice's null one, so positions only enter through the embeddings the caller adds),
    a causal mask offset by the past length, then ``final_norm`` and ``mel_head``.
    """

    def __init__(self, model) -> None:
        super().__init__()
        gpt = model.gpt
        self.blocks = gpt.h
        self.ln_f = gpt.ln_f
        self.final_norm = model.final_norm
        self.mel_head = model.mel_head
        self.num_heads = gpt.config.n_head
        self.head_dim = gpt.config.n_embd // gpt.config.n_head
        self.embed_dim = gpt.config.n_embd
        self.scaling = self.blocks[0].attn.scaling

    @staticmethod
    def _conv1d(layer, x: torch.Tensor) -> torch.Tensor:
        """transformers' Conv1D (x @ W + b) as MatMul + Add rather than the Gemm its addmm
        traces to: ONNX Runtime's weight-only quantizer (MatMulNBits) only rewrites MatMul."""
        return torch.matmul(x, layer.weight) + layer.bias

    def _mlp(self, mlp, x: torch.Tensor) -> torch.Tensor:
        return self._conv1d(mlp.c_proj, mlp.act(self._conv1d(mlp.c_fc, x)))

    def _attention(self, block, hidden, attention_mask, past_key, past_value):
        attn = block.attn
        bsz, seq, _ = hidden.shape
        query, key, value = self._conv1d(attn.c_attn, hidden).split(self.embed_dim, dim=2)
        query = query.view(bsz, seq, self.num_heads, self.head_dim).transpose(1, 2)
        key = key.view(bsz, seq, self.num_heads, self.head_dim).transpose(1, 2)
        value = value.view(bsz, seq, self.num_heads, self.head_dim).transpose(1, 2)
        key = torch.cat([past_key, key], dim=2)
        value = torch.cat([past_value, value], dim=2)
        total = key.shape[2]
        past = total - seq
        # query i (absolute position past + i) sees keys j <= past + i
        q_pos = torch.arange(seq, device=hidden.device).unsqueeze(1) + past
        k_pos = torch.arange(total, device=hidden.device).unsqueeze(0)
        # (B, 1, S, P+S): causal and not padding
        allowed = (k_pos <= q_pos).unsqueeze(0).unsqueeze(0) & (attention_mask[:, None, None, :] > 0)
        scores = torch.matmul(query, key.transpose(-1, -2)) * self.scaling
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        out = torch.matmul(weights, value)
        out = out.transpose(1, 2).reshape(bsz, seq, self.embed_dim)
        return self._conv1d(attn.c_proj, out), key, value

    def forward(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, logit_positions: torch.Tensor, *past: torch.Tensor
    ):
        hidden = inputs_embeds
        presents: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            residual = hidden
            attn_out, key, value = self._attention(
                block, block.ln_1(hidden), attention_mask, past[2 * i], past[2 * i + 1]
            )
            hidden = attn_out + residual
            hidden = hidden + self._mlp(block.mlp, block.ln_2(hidden))
            presents += [key, value]
        hidden = self.final_norm(self.ln_f(hidden))
        logits = torch.matmul(hidden[:, -1:, :], self.mel_head.weight.t())[:, 0, :] + self.mel_head.bias
        chosen = torch.index_select(hidden, 1, logit_positions)
        position_logits = torch.matmul(chosen, self.mel_head.weight.t()) + self.mel_head.bias
        return (hidden, logits, *presents, position_logits)


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def core_io_names(layers: int) -> tuple[list[str], list[str]]:
    inputs = ["inputs_embeds", "attention_mask", "logit_positions"]
    outputs = ["hidden", "logits"]
    for i in range(layers):
        inputs += [f"past_key_{i}", f"past_value_{i}"]
        outputs += [f"present_key_{i}", f"present_value_{i}"]
    return inputs, [*outputs, "position_logits"]


EXTERNAL_DATA_THRESHOLD = 1_800_000_000
"""Graphs larger than this (bytes) keep their weights in `<name>.data` beside the `.onnx`:
protobuf cannot hold more than 2 GiB, and the published GPT core is about 1.9 GB."""


def _save(model_proto, path: Path) -> None:
    """Save an ONNX model; weights go to `<name>.data` when the graph is large."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    data_name = path.name + ".data"
    if (path.parent / data_name).exists():
        (path.parent / data_name).unlink()
    size = model_proto.ByteSize() if _proto_size_ok(model_proto) else 2**31
    if size < EXTERNAL_DATA_THRESHOLD:
        onnx.save_model(model_proto, os.fspath(path))
    else:
        onnx.save_model(
            model_proto,
            os.fspath(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data_name,
            size_threshold=1024,
        )


def _proto_size_ok(model_proto) -> bool:
    try:
        model_proto.ByteSize()
        return True
    except Exception:  # noqa: BLE001 - protobuf raises on > 2 GB
        return False


def _export(module: nn.Module, args: tuple, path: Path, input_names, output_names, dynamic_axes) -> None:
    """TorchScript-based ONNX export into memory, then saved (external data when large)."""
    import tempfile
    import warnings

    import onnx

    module.eval()
    with tempfile.TemporaryDirectory(prefix="indextts-export-") as tmp:
        tmp_path = Path(tmp) / path.name
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter is deprecated in favour of dynamo but is mature and fast
            # for these modules; its tracer warnings (shape checks frozen at trace time, all of
            # them true for any input length) are noise here.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                os.fspath(tmp_path),
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=dynamic_axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        proto = onnx.load(os.fspath(tmp_path), load_external_data=True)
    _save(proto, path)


def export_speaker_conditioning(model, out_dir: Path) -> Path:
    path = out_dir / graph_file(SPEAKER_GRAPH)
    features = torch.randn(1, 40, 1024)
    _export(
        SpeakerConditioning(model),
        (features,),
        path,
        ["features"],
        ["speaker_latents"],
        {"features": {1: "frames"}},
    )
    return path


def export_emotion_conditioning(model, out_dir: Path) -> Path:
    path = out_dir / graph_file(EMOTION_GRAPH)
    features = torch.randn(1, 40, 1024)
    _export(
        EmotionConditioning(model),
        (features,),
        path,
        ["features"],
        ["emovec"],
        {"features": {1: "frames"}},
    )
    return path


def export_core(model, out_dir: Path) -> Path:
    path = out_dir / graph_file(GPT_GRAPH)
    core = GPTCore(model)
    layers = len(core.blocks)
    dim = core.embed_dim
    heads, head_dim = core.num_heads, core.head_dim
    inputs, outputs = core_io_names(layers)
    embeds = torch.randn(2, 3, dim)
    mask = torch.ones(2, 8, dtype=torch.long)
    logit_positions = torch.arange(2, dtype=torch.long)
    past = [torch.randn(2, heads, 5, head_dim) for _ in range(2 * layers)]
    dynamic_axes: dict[str, dict[int, str]] = {
        "inputs_embeds": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "total_sequence"},
        "logit_positions": {0: "logit_count"},
        "hidden": {0: "batch", 1: "sequence"},
        "logits": {0: "batch"},
        "position_logits": {0: "batch", 1: "logit_count"},
    }
    for name in inputs[3:]:
        dynamic_axes[name] = {0: "batch", 2: "past_sequence"}
    for name in outputs[2:-1]:
        dynamic_axes[name] = {0: "batch", 2: "total_sequence"}
    _export(core, (embeds, mask, logit_positions, *past), path, inputs, outputs, dynamic_axes)
    return path


def quantize_core(out_dir: Path) -> Path:
    """``gpt_int8.onnx``: the core with int8 MatMul weights (see `export.int8`).

    Decoding reads every GPT-2 weight once per token, so on CPU the decode step is bound by
    memory bandwidth, and int8 weights are a quarter of the bytes (speed and closeness to fp32:
    benchmarks/RESULTS.md, `indextts_gpt_decoding`); greedy codes can drift after some tokens.
    Opt-in: the runtime uses it only with ``int8=True``.
    """
    from .int8 import quantize_matmul_weights

    return quantize_matmul_weights(out_dir / graph_file(GPT_GRAPH), out_dir / graph_file(GPT_INT8_GRAPH))


def as_array(t: torch.Tensor) -> np.ndarray:
    """A float32 numpy copy of a parameter (the checkpoint may hold half precision)."""
    return t.detach().to(torch.float32).cpu().numpy().copy()


def embedding_arrays(model) -> dict[str, np.ndarray]:
    """The text and mel embedding tables both IndexTTS-2 and IndexTTS-2.5 GPTs have."""
    return {
        "text_embedding": as_array(model.text_embedding.weight),
        "text_pos_embedding": as_array(model.text_pos_embedding.emb.weight),
        "mel_embedding": as_array(model.mel_embedding.weight),
        "mel_pos_embedding": as_array(model.mel_pos_embedding.emb.weight),
    }


def runtime_arrays(model) -> dict[str, np.ndarray]:
    """The embedding tables the runtime assembles GPT inputs from (float32)."""
    return {**embedding_arrays(model), "speed_embedding": as_array(model.speed_emb.weight)}


def save_runtime_arrays(model, out_dir: Path) -> list[Path]:
    paths = []
    for name, array in runtime_arrays(model).items():
        path = out_dir / GPT_ARRAYS[name]
        np.save(path, array, allow_pickle=False)
        paths.append(path)
    return paths


def runtime_config(gpt_cfg: Mapping[str, Any], model) -> dict[str, Any]:
    """The GPT facts the runtime needs (JSON-serialisable)."""
    return {**core_config(gpt_cfg, model), "condition_latents": int(model.cond_num)}


def core_config(gpt_cfg: Mapping[str, Any], model) -> dict[str, Any]:
    """The facts IndexTTS-2 and IndexTTS-2.5 GPTs share: sizes and special tokens."""
    cfg = _plain(gpt_cfg)
    core = model.gpt.config
    return {
        "model_dim": int(cfg["model_dim"]),
        "layers": int(core.n_layer),
        "heads": int(core.n_head),
        "head_dim": int(core.n_embd // core.n_head),
        "max_mel_tokens": int(cfg["max_mel_tokens"]),
        "max_text_tokens": int(cfg["max_text_tokens"]),
        "number_text_tokens": int(cfg["number_text_tokens"]),
        "number_mel_codes": int(cfg["number_mel_codes"]),
        "start_mel_token": int(cfg["start_mel_token"]),
        "stop_mel_token": int(cfg["stop_mel_token"]),
        "start_text_token": int(cfg["start_text_token"]),
        "stop_text_token": int(cfg["stop_text_token"]),
    }


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
