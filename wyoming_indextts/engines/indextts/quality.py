"""How far a fast path's audio is from fp32's: speaker similarity and mel distance.

* Speaker similarity: cosine of the CAMPPlus embeddings (the speaker-verification network
  IndexTTS-2 itself uses for the voice's style vector) of two renders at 16 kHz. 1 is the
  same voice; renders of one speaker typically stay high, other speakers score far lower.
* Mel distance: mean absolute difference of the natural-log mel spectrograms (s2mel's own
  mel settings) along the dynamic-time-warping path between the two renders, so that two
  renders of one text that differ in timing are compared frame to matching frame. 0 is the
  same audio.
"""

from __future__ import annotations

import numpy as np

from .conditioning import AcousticConditioner
from .features import MelSettings, reference_mel
from .voice import SEMANTIC_RATE, SPEAKER_RATE, torchaudio_resample


def speaker_embedding(conditioner: AcousticConditioner, wav_22k: np.ndarray) -> np.ndarray:
    """CAMPPlus embedding (192,) of 22050 Hz float audio."""
    wav_16k = torchaudio_resample(np.asarray(wav_22k, dtype=np.float32), SPEAKER_RATE, SEMANTIC_RATE)
    return np.asarray(conditioner.style(wav_16k), dtype=np.float64).reshape(-1)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def dtw_mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-frame L1 distance / bins along the DTW path of frames (n, bins) and (m, bins)."""
    cost = np.abs(a[:, None, :] - b[None, :, :]).mean(axis=2)
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1), dtype=np.int64)
    total[0, 0] = 0.0
    for i in range(1, n + 1):
        # the diagonal and vertical moves in bulk; the horizontal one needs the row as it fills
        best = np.minimum(total[i - 1, :-1], total[i - 1, 1:])
        came = np.where(total[i - 1, :-1] <= total[i - 1, 1:], steps[i - 1, :-1], steps[i - 1, 1:])
        for j in range(1, m + 1):
            if total[i, j - 1] < best[j - 1]:
                total[i, j] = total[i, j - 1] + cost[i - 1, j - 1]
                steps[i, j] = steps[i, j - 1] + 1
            else:
                total[i, j] = best[j - 1] + cost[i - 1, j - 1]
                steps[i, j] = came[j - 1] + 1
    return float(total[n, m] / steps[n, m])


def mel_distance(wav_a: np.ndarray, wav_b: np.ndarray, settings: MelSettings = MelSettings()) -> float:
    """DTW-aligned mean |log-mel difference| of two 22050 Hz renders (0: identical)."""
    mel_a = reference_mel(np.asarray(wav_a, dtype=np.float32), settings)[0].T
    mel_b = reference_mel(np.asarray(wav_b, dtype=np.float32), settings)[0].T
    return dtw_mean_distance(mel_a.astype(np.float64), mel_b.astype(np.float64))
