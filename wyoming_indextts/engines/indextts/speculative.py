"""Speculative decoding of the GPT stage: a cheap draft graph proposes, the fp32 graph decides.

Decoding one token reads every GPT weight once, so a pass over k+1 tokens costs little more
than a pass over one. The int8 core (``gpt_int8.onnx``) drafts k codes one by one; the fp32
core then reads ``[last code, draft 1 … draft k]`` in one pass over its KV cache and returns
the logits at every one of those positions (``position_logits``). Each draft is checked
against the fp32 distribution at its position, after the same processing (stop token
forbidden below ``min_new_tokens``, repetition penalty, temperature, top-k, top-p):

* greedy: a draft is kept while it is the fp32 arg-max; the first that is not is replaced
  by the fp32 arg-max, so the codes are those of fp32 greedy decoding;
* sampling (Leviathan et al. 2023, Chen et al. 2023): draft x drawn from q is kept with
  probability min(1, p(x) / q(x)); the first rejected one is replaced by a draw from the
  normalised residual max(0, p - q). Every emitted code then follows p exactly, whatever the
  draft is. Its random draws differ from plain decoding's, so a seeded sampled render is a
  different (equally likely) one.

When all k drafts are kept, the fp32 logits after the last one give one more code for free.
"Exact" is up to floating-point rounding: a pass over k+1 positions does its sums in another
order than k+1 single steps (differences of ~1e-6 in the logits), as batching does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .gpt import GPTRuntime
from .sampling import Sampler


@dataclass
class SpeculativeStats:
    """How many drafted codes the fp32 graph kept (the speed-up depends on it)."""

    drafted: int = 0
    accepted: int = 0
    verify_passes: int = 0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0


def residual_distribution(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """norm(max(0, p - q)): what a rejected draft is replaced by. Only called after a
    rejection, which implies p != q; p itself if rounding left nothing."""
    residual = np.maximum(p - q, 0.0)
    total = residual.sum()
    return residual / total if total > 0 else p


def _crop(past: Mapping[str, np.ndarray], drop: int) -> dict[str, np.ndarray]:
    """The KV cache without its last `drop` positions (codes the fp32 graph did not keep)."""
    if drop <= 0:
        return dict(past)
    return {name: value[:, :, : value.shape[2] - drop] for name, value in past.items()}


class SpeculativeDecoder:
    """``GPTRuntime.generate`` with `draft` proposing `k` codes per fp32 pass."""

    def __init__(self, target: GPTRuntime, draft: GPTRuntime, k: int) -> None:
        if k < 1:
            raise ValueError(f"speculative decoding needs k >= 1 draft tokens, got {k}")
        if not target.maskable:
            raise ValueError("speculative decoding needs the fp32 GPT graph's position_logits output")
        self.target = target
        self.draft = draft
        self.k = k

    def generate(
        self,
        prefix: np.ndarray,
        text_ids: Sequence[int],
        sampler: Sampler,
        max_new_tokens: int = 1500,
        min_new_tokens: int = 0,
        stats: SpeculativeStats | None = None,
    ) -> np.ndarray:
        """Mel codes as ``GPTRuntime.generate`` returns them (same codes greedy, same
        distribution sampled)."""
        target, draft = self.target, self.draft
        stop = target.config.stop_mel_token
        greedy = not sampler.options.do_sample
        limit = min(max_new_tokens, target.config.max_mel_tokens)
        stats = stats if stats is not None else SpeculativeStats()

        logits, target_past, seen = target.start(prefix, text_ids)
        _, draft_past, _ = draft.start(prefix, text_ids)
        codes = [sampler(target.forbid_stop(logits[0], 0, min_new_tokens), np.asarray(seen, dtype=np.int64))]
        target_cached = draft_cached = 0  # codes already in each KV cache
        while codes[-1] != stop and len(codes) < limit:
            produced = len(codes)
            drafts: list[int] = []
            proposals: list[np.ndarray | None] = []
            for _ in range(min(self.k, limit - produced - 1)):
                unfed = (codes + drafts)[draft_cached:]
                _, draft_logits, draft_past = draft.run_core(draft.code_embeddings(unfed, draft_cached), draft_past)
                draft_cached += len(unfed)
                row = draft.forbid_stop(draft_logits[0], produced + len(drafts), min_new_tokens)
                history = np.asarray(seen + codes + drafts, dtype=np.int64)
                if greedy:
                    token, q = int(np.argmax(sampler.penalized(row, history))), None
                else:
                    q = sampler.distribution(row, history)
                    token = sampler.draw(q)
                drafts.append(token)
                proposals.append(q)
                if token == stop:
                    break

            fed = (codes + drafts)[target_cached:]
            _, _, target_past, verify_logits = target.run_masked(
                target.code_embeddings(fed, target_cached), target_past, logit_positions=range(len(fed))
            )
            target_cached += len(fed)
            stats.verify_passes += 1
            stats.drafted += len(drafts)
            emitted, kept = self._judge(verify_logits[0], drafts, proposals, codes, seen, sampler, min_new_tokens)
            stats.accepted += kept
            codes += emitted
            # the caches keep the codes that stayed: every emitted code but the newest
            valid = len(codes) - 1
            target_past = _crop(target_past, target_cached - valid)
            target_cached = min(target_cached, valid)
            draft_past = _crop(draft_past, draft_cached - valid)
            draft_cached = min(draft_cached, valid)

        if stop in codes:
            codes = codes[: codes.index(stop) + 1]
        return np.asarray(codes[:limit], dtype=np.int64)

    def _judge(
        self,
        verify_logits: np.ndarray,
        drafts: list[int],
        proposals: list[np.ndarray | None],
        codes: list[int],
        seen: list[int],
        sampler: Sampler,
        min_new_tokens: int,
    ) -> tuple[list[int], int]:
        """The codes this round adds and how many drafts were kept: the kept drafts, then the
        fp32 replacement of the first rejected one or, when all were kept (and none was the
        stop token), the fp32 code after the last."""
        target = self.target
        produced = len(codes)
        out: list[int] = []
        for i, (token, q) in enumerate(zip(drafts, proposals)):
            row = target.forbid_stop(verify_logits[i], produced + i, min_new_tokens)
            history = np.asarray(seen + codes + drafts[:i], dtype=np.int64)
            if q is None:
                best = int(np.argmax(sampler.penalized(row, history)))
                if best != token:
                    return out + [best], len(out)
            else:
                p = sampler.distribution(row, history)
                if sampler.rng.random() * q[token] >= p[token]:  # rejected: u >= p(x)/q(x)
                    return out + [sampler.draw(residual_distribution(p, q))], len(out)
            out.append(token)
            if token == target.config.stop_mel_token:
                return out, len(out)
        row = target.forbid_stop(verify_logits[len(drafts)], produced + len(drafts), min_new_tokens)
        return out + [sampler(row, np.asarray(seen + codes + drafts, dtype=np.int64))], len(out)
