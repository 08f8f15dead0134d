"""GPT stage of IndexTTS-2 on ONNX Runtime: conditioning prefix, decode loop, latents.

The graph layout is explained in ``wyoming_indextts/export/gpt.py``. This module does in
numpy what the official ``UnifiedVoice`` does around its GPT-2 core, step for step:

* ``inference_speech``: prefix ``[speaker latents + emovec, speed[1], speed[0]]``; text ids
  without start/stop ids, wrapped in ``[start_text] ... [stop_text]`` (``prepare_gpt_inputs``);
  text embedding + text position; then the start-mel token at mel position 0. The decode
  step for the k-th generated code (k = 1, 2, ...) uses mel position ``k + 1`` — the
  official ``GPT2InferenceModel`` computes ``attention_mask.shape[1] - mel_len``, which skips
  position 1; reproduced on purpose. Repetition penalty sees the fake prompt ids (``1``),
  the start-mel token and every generated code, as transformers' ``generate`` does.
* ``forward`` (latents): ``[prefix][start_text, ids, stop_text][start_mel, codes, stop_mel]``
  with positions from 0 for text and mel, no filtering of the text ids, and the last two mel
  positions dropped.
* ``merge_emovec`` and the 8-emotion vector path of ``infer_v2``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .format import GPT_GRAPH, graph_file
from .sampling import Sampler

REEXPORT_HINT = "export the model again with this version of wyoming-indextts for batched and speculative decoding"

EMOTIONS = ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm")
"""The order of infer_v2's 8-emotion vector."""


@dataclass(frozen=True)
class GPTConfig:
    model_dim: int
    layers: int
    heads: int
    head_dim: int
    max_mel_tokens: int
    max_text_tokens: int
    number_mel_codes: int
    start_mel_token: int
    stop_mel_token: int
    start_text_token: int
    stop_text_token: int

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> GPTConfig:
        return cls(**{name: int(cfg[name]) for name in cls.__dataclass_fields__})


class GPTRuntime:
    """Runs the exported GPT core (``gpt.onnx``) with the embedding tables beside it."""

    def __init__(self, session: Any, arrays: Mapping[str, np.ndarray], config: GPTConfig) -> None:
        self.session = session
        self.config = config
        self.text_embedding = np.asarray(arrays["text_embedding"], dtype=np.float32)
        self.text_pos_embedding = np.asarray(arrays["text_pos_embedding"], dtype=np.float32)
        self.mel_embedding = np.asarray(arrays["mel_embedding"], dtype=np.float32)
        self.mel_pos_embedding = np.asarray(arrays["mel_pos_embedding"], dtype=np.float32)
        # IndexTTS-2.5 has no speed rows (its runtime, gpt25.GPT25Runtime, builds its own prefix).
        self.speed_embedding = np.asarray(arrays["speed_embedding"], dtype=np.float32) if "speed_embedding" in arrays else None
        self._past_names = []
        self._present_names = []
        for i in range(config.layers):
            self._past_names += [f"past_key_{i}", f"past_value_{i}"]
            self._present_names += [f"present_key_{i}", f"present_value_{i}"]
        self._output_names = ["hidden", "logits", *self._present_names]
        inputs = {node.name for node in session.get_inputs()}
        self.maskable = {"attention_mask", "logit_positions"} <= inputs
        """Graphs exported before batched and speculative decoding lack the mask and the
        per-position logits; they still decode one sentence at a time."""

    # -- assembly ---------------------------------------------------------------------------

    def conditioning_prefix(self, speaker_latents: np.ndarray, emovec: np.ndarray) -> np.ndarray:
        """(1, 32, D) + (1, D) → (1, 34, D): ``conds_latent`` of inference_speech/forward."""
        latents = np.asarray(speaker_latents, dtype=np.float32)
        emovec = np.asarray(emovec, dtype=np.float32).reshape(latents.shape[0], 1, -1)
        batch = latents.shape[0]
        duration_half = np.broadcast_to(self.speed_embedding[1], (batch, 1, latents.shape[-1]))
        duration = np.broadcast_to(self.speed_embedding[0], (batch, 1, latents.shape[-1]))
        return np.concatenate([latents + emovec, duration_half, duration], axis=1)

    def _text_embeddings(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        return self.text_embedding[ids] + self.text_pos_embedding[: ids.shape[-1]]

    def prompt_text_ids(self, text_ids: Sequence[int]) -> np.ndarray:
        """prepare_gpt_inputs: drop start/stop ids, then wrap in start/stop."""
        cfg = self.config
        ids = np.asarray(text_ids, dtype=np.int64).reshape(-1)
        ids = ids[(ids != cfg.stop_text_token) & (ids != cfg.start_text_token)]
        return np.concatenate([[cfg.start_text_token], ids, [cfg.stop_text_token]]).astype(np.int64)

    def prompt_embeddings(self, prefix: np.ndarray, text_ids: Sequence[int]) -> np.ndarray:
        """``[prefix][text]`` embeddings (the cached ``mel_emb`` of the official inference model)."""
        text = self._text_embeddings(self.prompt_text_ids(text_ids))[None]
        return np.concatenate([prefix, text], axis=1).astype(np.float32)

    def _mel_step_embedding(self, token: int, position: int) -> np.ndarray:
        return (self.mel_embedding[token] + self.mel_pos_embedding[position])[None, None, :]

    # -- core -------------------------------------------------------------------------------

    def _empty_past(self, batch: int = 1) -> dict[str, np.ndarray]:
        cfg = self.config
        empty = np.zeros((batch, cfg.heads, 0, cfg.head_dim), dtype=np.float32)
        return {name: empty for name in self._past_names}

    def run_core(self, embeds: np.ndarray, past: Mapping[str, np.ndarray] | None = None):
        """One pass of the core: returns (hidden, logits, present dict keyed by past names)."""
        hidden, logits, present, _ = self.run_masked(embeds, past)
        return hidden, logits, present

    def run_masked(
        self,
        embeds: np.ndarray,
        past: Mapping[str, np.ndarray] | None = None,
        mask: np.ndarray | None = None,
        logit_positions: Sequence[int] = (),
    ):
        """One pass with padding `mask` (B, P+S; None: nothing padded) → (hidden, logits of the
        last position, present, logits at `logit_positions` (B, K, V) or None when none asked)."""
        embeds = np.ascontiguousarray(embeds, dtype=np.float32)
        past = past if past is not None else self._empty_past(embeds.shape[0])
        feed = {"inputs_embeds": embeds, **past}
        names = self._output_names
        if self.maskable:
            if mask is None:
                total = next(iter(past.values())).shape[2] + embeds.shape[1]
                mask = np.ones((embeds.shape[0], total), dtype=np.int64)
            feed["attention_mask"] = np.ascontiguousarray(mask, dtype=np.int64)
            feed["logit_positions"] = np.asarray(logit_positions, dtype=np.int64).reshape(-1)
            if len(logit_positions):
                names = [*names, "position_logits"]
        elif mask is not None or len(logit_positions):
            raise ValueError(f"{graph_file(GPT_GRAPH)} was exported without attention_mask; {REEXPORT_HINT}")
        outputs = self.session.run(names, feed)
        present = dict(zip(self._past_names, outputs[2 : 2 + len(self._past_names)]))
        position_logits = outputs[-1] if len(names) > len(self._output_names) else None
        return outputs[0], outputs[1], present, position_logits

    def start(self, prefix: np.ndarray, text_ids: Sequence[int]):
        """Prefill ``[prefix][text][start_mel]`` → (logits for the first code, past, seen ids)."""
        prompt = self.prompt_embeddings(prefix, text_ids)
        embeds = np.concatenate([prompt, self._mel_step_embedding(self.config.start_mel_token, 0)], axis=1)
        _, logits, past = self.run_core(embeds)
        # what transformers' generate sees as input_ids: mel_len fake ids (1) + start_mel
        return logits, past, [1, self.config.start_mel_token]

    def code_embeddings(self, tokens: Sequence[int], first_index: int) -> np.ndarray:
        """(1, n, D) embeddings of codes number ``first_index``, ``first_index + 1``, … (0-based):
        code k is fed at mel position k + 2 (see the module docstring)."""
        positions = np.arange(first_index, first_index + len(tokens)) + 2
        return (self.mel_embedding[np.asarray(tokens, dtype=np.int64)] + self.mel_pos_embedding[positions])[None]

    def forbid_stop(self, logits: np.ndarray, produced: int, min_new_tokens: int) -> np.ndarray:
        """The row of logits with the stop token masked while fewer than min_new_tokens came."""
        if produced >= min_new_tokens:
            return logits
        row = logits.copy()
        row[self.config.stop_mel_token] = -np.inf
        return row

    # -- generation -------------------------------------------------------------------------

    def generate(
        self,
        prefix: np.ndarray,
        text_ids: Sequence[int],
        sampler: Sampler,
        max_new_tokens: int = 1500,
        min_new_tokens: int = 0,
    ) -> np.ndarray:
        """Mel codes as ``inference_speech`` returns them (the stop token included when it came).

        ``min_new_tokens`` forbids the stop token before that many codes, as transformers'
        ``MinNewTokensLengthLogitsProcessor`` (benchmarks force a length with it).
        """
        logits, past, seen = self.start(prefix, text_ids)
        return self.decode(logits, past, seen, sampler, max_new_tokens, min_new_tokens)

    def decode(
        self,
        logits: np.ndarray,
        past: Mapping[str, np.ndarray],
        seen: list[int],
        sampler: Sampler,
        max_new_tokens: int,
        min_new_tokens: int = 0,
    ) -> np.ndarray:
        """The decode loop after the prefill (``start``): codes up to the stop token or the limit."""
        cfg = self.config
        limit = min(max_new_tokens, cfg.max_mel_tokens)
        codes: list[int] = []
        while True:
            row = self.forbid_stop(logits[0], len(codes), min_new_tokens)
            token = sampler(row, np.asarray(seen + codes, dtype=np.int64))
            codes.append(token)
            if token == cfg.stop_mel_token or len(codes) >= limit:
                break
            _, logits, past = self.run_core(self.code_embeddings([token], len(codes) - 1), past)
        return np.asarray(codes, dtype=np.int64)

    def latents(
        self,
        prefix: np.ndarray,
        text_ids: Sequence[int],
        codes: Sequence[int],
    ) -> np.ndarray:
        """UnifiedVoice.forward with ``emo_vec`` given: (1, len(codes), D) latents."""
        cfg = self.config
        text = np.concatenate(
            [[cfg.start_text_token], np.asarray(text_ids, dtype=np.int64).reshape(-1), [cfg.stop_text_token]]
        ).astype(np.int64)
        mel = np.concatenate(
            [[cfg.start_mel_token], np.asarray(codes, dtype=np.int64).reshape(-1), [cfg.stop_mel_token]]
        ).astype(np.int64)
        text_emb = self._text_embeddings(text)[None]
        mel_emb = (self.mel_embedding[mel] + self.mel_pos_embedding[: mel.shape[0]])[None]
        embeds = np.concatenate([prefix, text_emb, mel_emb], axis=1)
        hidden, _, _ = self.run_core(embeds)
        return hidden[:, -mel.shape[0] : -2] if mel.shape[0] > 2 else hidden[:, :0]


def trim_codes(codes: np.ndarray, stop_token: int) -> np.ndarray:
    """Codes up to (not including) the first stop token, as infer_v2 cuts them."""
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    hits = np.flatnonzero(codes == stop_token)
    return codes[: hits[0]] if hits.size else codes


# -- emotion vector ---------------------------------------------------------------------------


def merge_emovec(base_vec: np.ndarray, emo_vec: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``UnifiedVoice.merge_emovec`` on precomputed ``get_emovec`` outputs."""
    base = np.asarray(base_vec, dtype=np.float32)
    emo = np.asarray(emo_vec, dtype=np.float32)
    return base + np.float32(alpha) * (emo - base)


def scale_emotion_weights(weights: Sequence[float], strength: float) -> list[float]:
    """infer_v2: an explicit emotion vector is scaled by ``emo_alpha`` clamped to [0, 1] and
    truncated to 4 decimals (only when the scale is not 1)."""
    scale = max(0.0, min(1.0, float(strength)))
    values = [float(x) for x in weights]
    if scale != 1.0:
        values = [int(x * scale * 10000) / 10000 for x in values]
    return values


def split_matrix(matrix: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    bounds = np.cumsum(counts)[:-1]
    return np.split(np.asarray(matrix, dtype=np.float32), bounds, axis=0)


def most_similar_cosine(query: np.ndarray, matrix: np.ndarray) -> int:
    """``emotion.find_most_similar_cosine``: arg-max of torch's cosine similarity."""
    q = np.asarray(query, dtype=np.float32).reshape(1, -1)
    m = np.asarray(matrix, dtype=np.float32)
    eps = np.float32(1e-8)
    q_norm = np.maximum(np.linalg.norm(q, axis=1, keepdims=True), eps)
    m_norm = np.maximum(np.linalg.norm(m, axis=1, keepdims=True), eps)
    similarities = ((q / q_norm) * (m / m_norm)).sum(axis=1)
    return int(np.argmax(similarities))


def emotion_indices(style: np.ndarray, spk_matrix: np.ndarray, counts: Sequence[int]) -> list[int]:
    """For each of the 8 emotions, the row of the speaker matrix closest to the voice's style."""
    return [most_similar_cosine(style, part) for part in split_matrix(spk_matrix, counts)]


def apply_emotion_vector(
    emovec: np.ndarray,
    weights: Sequence[float],
    emo_matrix: np.ndarray,
    counts: Sequence[int],
    indices: Sequence[int],
) -> np.ndarray:
    """``emovec_mat + (1 - sum(weights)) * emovec`` as infer_v2 computes it."""
    w = np.asarray(weights, dtype=np.float32)
    parts = split_matrix(emo_matrix, counts)
    rows = np.stack([part[index] for part, index in zip(parts, indices)])
    emovec_mat = (w[:, None] * rows).sum(axis=0, dtype=np.float32)[None]
    return emovec_mat + (np.float32(1.0) - w.sum(dtype=np.float32)) * np.asarray(emovec, dtype=np.float32)
