"""Next-token choice for the GPT decode loop, in numpy.

Reproduces what ``transformers.GenerationMixin.generate`` does for UnifiedVoice with one beam:
the repetition penalty over every id in ``input_ids`` (which, in the official code, are the
fake prompt ids — all ``1`` — the start-mel token and the generated codes), then temperature,
top-k and top-p, then a draw from the softmax; or, with ``do_sample=False``, the arg-max after
the repetition penalty (the warpers only apply when sampling, as in transformers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingOptions:
    """Decoding options; the defaults are infer_v2's (except one beam instead of three)."""

    do_sample: bool = True
    top_k: int = 30
    top_p: float = 0.8
    temperature: float = 0.8
    repetition_penalty: float = 10.0
    seed: int | None = None
    """Seed for the sampling generator; None draws a fresh one per sentence."""

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.temperature <= 0.0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.repetition_penalty <= 0.0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")


def apply_repetition_penalty(logits: np.ndarray, token_ids: np.ndarray, penalty: float) -> np.ndarray:
    """transformers' RepetitionPenaltyLogitsProcessor for one row of logits."""
    if penalty == 1.0 or token_ids.size == 0:
        return logits
    out = logits.copy()
    ids = np.unique(token_ids)
    score = out[ids]
    out[ids] = np.where(score < 0, score * np.float32(penalty), score / np.float32(penalty))
    return out


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        return logits
    return logits / np.float32(temperature)


def apply_top_k(logits: np.ndarray, top_k: int, min_tokens_to_keep: int = 1) -> np.ndarray:
    """Keep the `top_k` highest logits (ties with the k-th kept, as transformers does)."""
    if top_k <= 0:
        return logits
    k = min(max(top_k, min_tokens_to_keep), logits.shape[-1])
    kth = np.partition(logits, -k)[-k]
    return np.where(logits < kth, np.float32(-np.inf), logits)


def apply_top_p(logits: np.ndarray, top_p: float, min_tokens_to_keep: int = 1) -> np.ndarray:
    """Nucleus filtering exactly as transformers' TopPLogitsWarper (ascending sort)."""
    if top_p >= 1.0:
        return logits
    order = np.argsort(logits, kind="stable")
    sorted_logits = logits[order]
    cumulative = np.cumsum(softmax(sorted_logits))
    remove_sorted = cumulative <= (1.0 - top_p)
    remove_sorted[-min_tokens_to_keep:] = False
    remove = np.zeros_like(remove_sorted)
    remove[order] = remove_sorted
    return np.where(remove, np.float32(-np.inf), logits)


def softmax(logits: np.ndarray) -> np.ndarray:
    finite = logits[np.isfinite(logits)]
    shift = finite.max() if finite.size else 0.0
    e = np.exp((logits - shift).astype(np.float64))
    return e / e.sum()


class Sampler:
    """Chooses the next token from one row of logits, given the ids seen so far."""

    def __init__(self, options: SamplingOptions, rng: np.random.Generator | None = None) -> None:
        self.options = options
        self.rng = rng if rng is not None else np.random.default_rng(options.seed)

    def __call__(self, logits: np.ndarray, seen_ids: np.ndarray) -> int:
        if not self.options.do_sample:
            return int(np.argmax(self.penalized(logits, seen_ids)))
        return self.draw(self.distribution(logits, seen_ids))

    def penalized(self, logits: np.ndarray, seen_ids: np.ndarray) -> np.ndarray:
        """The scores greedy decoding takes the arg-max of (repetition penalty only)."""
        scores = np.asarray(logits, dtype=np.float32).reshape(-1)
        return apply_repetition_penalty(scores, seen_ids, self.options.repetition_penalty)

    def distribution(self, logits: np.ndarray, seen_ids: np.ndarray) -> np.ndarray:
        """The probabilities a sampled token is drawn from, after every processor (float64)."""
        opts = self.options
        scores = apply_temperature(self.penalized(logits, seen_ids), opts.temperature)
        scores = apply_top_k(scores, opts.top_k)
        scores = apply_top_p(scores, opts.top_p)
        return softmax(scores)

    def draw(self, probs: np.ndarray) -> int:
        return int(self.rng.choice(probs.shape[0], p=probs))
