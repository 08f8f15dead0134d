"""Batched decoding of the GPT stage: several sentences take their decode steps together.

A decode step of one sentence reads every GPT weight to multiply it by a single row; with B
sentences the same read serves B rows, so a step of B costs far less than B steps. Each
sentence is prefilled alone (exactly as ``GPTRuntime.generate`` does; prompts differ in
length and a prefill is compute-bound anyway), then the KV caches are left-padded to one
length and the padding is masked (``attention_mask``): a sentence never attends to another's
padding, and positions enter only through the embeddings each sentence adds for itself, so
every sentence decodes as it would alone (greedy: the same codes; sampling: each sentence
draws from its own sampler in the same order). A sentence that stops leaves the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .gpt import REEXPORT_HINT, GPTRuntime
from .sampling import Sampler


def _left_pad(array: np.ndarray, length: int) -> np.ndarray:
    """(1, heads, P, head_dim) → (1, heads, length, head_dim), zeros in front."""
    pad = length - array.shape[2]
    if pad == 0:
        return array
    return np.concatenate([np.zeros(array.shape[:2] + (pad, array.shape[3]), dtype=array.dtype), array], axis=2)


def generate_batch(
    gpt: GPTRuntime,
    prefixes: Sequence[np.ndarray],
    text_ids: Sequence[Sequence[int]],
    samplers: Sequence[Sampler],
    max_new_tokens: int = 1500,
    min_new_tokens: int = 0,
    pause: Callable[[], None] | None = None,
) -> list[np.ndarray]:
    """``GPTRuntime.generate`` for several sentences at once: one list of codes per sentence.

    `pause` is called before each prefill and each decode step: a background batch waits there
    while live renders work (or raises to stop), since a whole batch takes minutes on a CPU."""
    pause = pause or (lambda: None)
    if not gpt.maskable:
        raise ValueError(f"batched decoding needs the GPT graph's attention_mask; {REEXPORT_HINT}")
    if not len(prefixes) == len(text_ids) == len(samplers):
        raise ValueError("generate_batch needs one prefix, one text and one sampler per sentence")
    if not prefixes:
        return []
    cfg = gpt.config
    limit = min(max_new_tokens, cfg.max_mel_tokens)
    starts = []
    for prefix, ids in zip(prefixes, text_ids):
        pause()
        starts.append(gpt.start(prefix, ids))
    lengths = [next(iter(past.values())).shape[2] for _, past, _ in starts]
    longest = max(lengths)
    past = {
        name: np.concatenate([_left_pad(start_past[name], longest) for _, start_past, _ in starts], axis=0)
        for name in starts[0][1]
    }
    mask = np.zeros((len(starts), longest), dtype=np.int64)
    for row, length in enumerate(lengths):
        mask[row, longest - length :] = 1
    logits = np.concatenate([start_logits for start_logits, _, _ in starts], axis=0)
    seen = [start_seen for _, _, start_seen in starts]
    codes: list[list[int]] = [[] for _ in starts]
    active = list(range(len(starts)))  # the sentence behind each batch row

    while True:
        pause()
        going = []
        for row, sentence in enumerate(active):
            scores = gpt.forbid_stop(logits[row], len(codes[sentence]), min_new_tokens)
            token = samplers[sentence](scores, np.asarray(seen[sentence] + codes[sentence], dtype=np.int64))
            codes[sentence].append(token)
            if token != cfg.stop_mel_token and len(codes[sentence]) < limit:
                going.append(row)
        if not going:
            break
        if len(going) < len(active):
            past = {name: value[going] for name, value in past.items()}
            mask = mask[going]
            active = [active[row] for row in going]
            padded = int(np.argmax(mask.any(axis=0)))  # columns nobody left in the batch attends to
            if padded:
                past = {name: value[:, :, padded:] for name, value in past.items()}
                mask = mask[:, padded:]
        embeds = np.concatenate(
            [gpt.code_embeddings(codes[sentence][-1:], len(codes[sentence]) - 1) for sentence in active], axis=0
        )
        mask = np.concatenate([mask, np.ones((len(active), 1), dtype=np.int64)], axis=1)
        _, logits, past, _ = gpt.run_masked(embeds, past, mask)
    return [np.asarray(sentence_codes, dtype=np.int64) for sentence_codes in codes]
