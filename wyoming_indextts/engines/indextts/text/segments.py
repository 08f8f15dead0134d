"""The official `TextTokenizer.split_segments(_by_token)` of IndexTTS-2, token for token:
cut a long text's BPE pieces into GPT-sized segments."""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)

SENTENCE_END_TOKENS: tuple[str, ...] = (".", "!", "?", "▁.", "▁?", "▁...")
_COMMA_TOKENS: tuple[str, ...] = (",", "▁,")
_QUOTE_TOKENS: tuple[str, ...] = ("'", "▁'")


def _split_by_token(
    tokens: Sequence[str], split_tokens: Sequence[str], max_len: int, quick_streaming_tokens: int
) -> list[list[str]]:
    """Cut at `split_tokens`; a piece holding a comma is cut at commas first, else at "-";
    a piece that is still too long is cut every `max_len` tokens. Then short neighbours merge."""
    if not tokens:
        return []
    segments: list[list[str]] = []
    current: list[str] = []
    for i, token in enumerate(tokens):
        current.append(token)
        if not any(t in split_tokens for t in _COMMA_TOKENS) and any(t in current for t in _COMMA_TOKENS):
            pieces = _split_by_token(current, _COMMA_TOKENS, max_len, quick_streaming_tokens)
        elif "-" not in split_tokens and "-" in current:
            pieces = _split_by_token(current, ("-",), max_len, quick_streaming_tokens)
        elif len(current) <= max_len:
            if token in split_tokens and len(current) > 2:
                if i < len(tokens) - 1 and tokens[i + 1] in _QUOTE_TOKENS:
                    # Official behaviour, kept for parity: the closing quote ends this
                    # segment and is still read again as the first token of the next one.
                    current.append(tokens[i + 1])
                segments.append(current)
                current = []
            continue
        else:
            pieces = [current[j : j + max_len] for j in range(0, len(current), max_len)]
            log.warning("A text piece of %d tokens has no place to split; cut every %d tokens", len(current), max_len)
        segments.extend(pieces)
        current = []
    if current:
        segments.append(current)
    return _merge_segments(segments, max_len, quick_streaming_tokens)


def _merge_segments(segments: Sequence[list[str]], max_len: int, quick_streaming_tokens: int) -> list[list[str]]:
    """Neighbours merge while they fit in `max_len` once `quick_streaming_tokens` have passed,
    or whenever together they fit in half of it."""
    merged: list[list[str]] = []
    total = 0
    for segment in segments:
        total += len(segment)
        if not segment:
            continue
        if not merged:
            merged.append(segment)
        elif len(merged[-1]) + len(segment) <= max_len and total > quick_streaming_tokens:
            merged[-1] = merged[-1] + segment
        elif len(merged[-1]) + len(segment) <= max_len / 2:
            merged[-1] = merged[-1] + segment
        else:
            merged.append(segment)
    return merged


def split_segments(
    tokens: Sequence[str], max_text_tokens_per_segment: int = 120, quick_streaming_tokens: int = 0
) -> list[list[str]]:
    """The official `TextTokenizer.split_segments`, token for token."""
    return _split_by_token(tokens, SENTENCE_END_TOKENS, max_text_tokens_per_segment, quick_streaming_tokens)

