"""BigVGAN v2 on ONNX Runtime: mel (1, 80, T) -> float32 waveform at 22050 Hz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wyoming_indextts.engines.indextts.conditioning import SessionFor, directory_sessions

GRAPH_BIGVGAN = "bigvgan"
SAMPLE_RATE = 22050


class Vocoder:
    sample_rate = SAMPLE_RATE

    def __init__(self, session_for: SessionFor) -> None:
        self._session_for = session_for

    @classmethod
    def from_dir(cls, model_dir: Path, threads: int = 0) -> Vocoder:
        return cls(directory_sessions(model_dir, threads))

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """Samples (T * 256,) float32 in [-1, 1], clamped as infer_v2 clamps."""
        if mel.ndim != 3 or mel.shape[0] != 1:
            raise ValueError(f"mel must be (1, 80, frames), got {mel.shape}")
        (wav,) = self._session_for(GRAPH_BIGVGAN).run(None, {"mel": np.ascontiguousarray(mel, dtype=np.float32)})
        return np.clip(wav.reshape(-1), -1.0, 1.0).astype(np.float32, copy=False)
