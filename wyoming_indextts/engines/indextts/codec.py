"""IndexTTS-2.5's codes → s2mel condition: codec decoder, then the length regulator at a
length set by the speech rate.

infer_v2_5 per sentence::

    S_infer = semantic_codec.decode(codes)                  # (1, 2N, 1024): 25 Hz → 50 Hz
    target = int(S_infer.shape[1] * 1.72 * duration_factor)  # mel frames at 22050 / 256 Hz
    cond = length_regulator(S_infer, ylens=target)

The decoder is the ``codec_decode`` graph; the regulator is the ``prompt_regulator`` graph (the
same module the voice's prompt goes through), fed the nearest-neighbour frame index. The 1.72
is the folder's ``mel_frames_per_code`` (acoustic.json): per 50 Hz frame, which for 2.5 is a
codec frame (two per code), for 2.0 a code.
"""

from __future__ import annotations

import numpy as np

from .conditioning import SessionFor, nearest_frame_index
from .format import CODEC_DECODE_GRAPH, MEL_FRAMES_PER_CODE, PROMPT_REGULATOR_GRAPH
from .voice import MAX_SPEED, MIN_SPEED


def duration_factor(speed: float) -> float:
    """The official ``duration_factor`` for a speech rate (1.0 as published, 1.25 a quarter
    faster): the mel length is divided by the rate."""
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")
    return 1.0 / speed


def target_mel_frames25(feature_frames: int, factor: float = 1.0, per_frame: float = MEL_FRAMES_PER_CODE) -> int:
    """``int(S_infer.shape[1] * 1.72 * duration_factor)`` in Python floats, as infer_v2_5."""
    return int(feature_frames * per_frame * factor)


class SemanticDecoder:
    def __init__(self, session_for: SessionFor, mel_frames_per_frame: float = MEL_FRAMES_PER_CODE) -> None:
        self._session_for = session_for
        self.mel_frames_per_frame = mel_frames_per_frame

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes (1, N) → features (1, 2N, 1024) (``EnhancedCodec.decode``)."""
        codes = np.ascontiguousarray(np.asarray(codes, dtype=np.int64).reshape(1, -1))
        (features,) = self._session_for(CODEC_DECODE_GRAPH).run(None, {"codes": codes})
        return features

    def regulate(self, features: np.ndarray, factor: float = 1.0) -> np.ndarray:
        """Features (1, F, 1024) → condition (1, int(F * 1.72 * factor), C)."""
        frames = target_mel_frames25(features.shape[1], factor, self.mel_frames_per_frame)
        index = nearest_frame_index(features.shape[1], frames)
        (cond,) = self._session_for(PROMPT_REGULATOR_GRAPH).run(None, {"s_ref": features, "frame_index": index})
        return cond

    def condition(self, codes: np.ndarray, factor: float = 1.0) -> np.ndarray:
        return self.regulate(self.decode(codes), factor)
