"""IndexTTS-2.5's codes → s2mel condition: codec decoder, then the length regulator at a
length set by the speech rate.

infer_v2_5 per sentence::

    S_infer = semantic_codec.decode(codes)                  # (1, 2N, 1024): 25 Hz → 50 Hz
    target = int(S_infer.shape[1] * 1.72 * duration_factor)  # mel frames at 22050 / 256 Hz
    cond = length_regulator(S_infer, ylens=target)

The decoder is the ``codec_decode`` graph; the regulator is the ``prompt_regulator`` graph (the
same module the voice's prompt goes through), fed the nearest-neighbour frame index.
"""

from __future__ import annotations

import numpy as np

from .conditioning import GRAPH_PROMPT_REGULATOR, SessionFor, nearest_frame_index
from .voice import MAX_SPEED, MIN_SPEED

GRAPH_CODEC_DECODE = "codec_decode"
MEL_FRAMES_PER_FEATURE = 1.72
"""Mel frames (22050 Hz, hop 256) per 50 Hz codec frame; two codec frames per 25 Hz code."""


def duration_factor(speed: float) -> float:
    """The official ``duration_factor`` for a speech rate (1.0 as published, 1.25 a quarter
    faster): the mel length is divided by the rate."""
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")
    return 1.0 / speed


def target_mel_frames25(feature_frames: int, factor: float = 1.0) -> int:
    """``int(S_infer.shape[1] * 1.72 * duration_factor)`` in Python floats, as infer_v2_5."""
    return int(feature_frames * MEL_FRAMES_PER_FEATURE * factor)


class SemanticDecoder:
    def __init__(self, session_for: SessionFor) -> None:
        self._session_for = session_for

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes (1, N) → features (1, 2N, 1024) (``EnhancedCodec.decode``)."""
        codes = np.ascontiguousarray(np.asarray(codes, dtype=np.int64).reshape(1, -1))
        (features,) = self._session_for(GRAPH_CODEC_DECODE).run(None, {"codes": codes})
        return features

    def regulate(self, features: np.ndarray, factor: float = 1.0) -> np.ndarray:
        """Features (1, F, 1024) → condition (1, int(F * 1.72 * factor), C)."""
        frames = target_mel_frames25(features.shape[1], factor)
        index = nearest_frame_index(features.shape[1], frames)
        (cond,) = self._session_for(GRAPH_PROMPT_REGULATOR).run(None, {"s_ref": features, "frame_index": index})
        return cond

    def condition(self, codes: np.ndarray, factor: float = 1.0) -> np.ndarray:
        return self.regulate(self.decode(codes), factor)
