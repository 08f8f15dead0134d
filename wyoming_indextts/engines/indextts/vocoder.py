"""BigVGAN v2 on ONNX Runtime: mel (1, 80, T) -> float32 waveform at the folder's sample rate
(22050 Hz for IndexTTS-2), `hop_length` samples per mel frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wyoming_indextts.engines.indextts.conditioning import SessionFor, directory_sessions
from wyoming_indextts.engines.indextts.format import BIGVGAN_GRAPH, SpeechParams


class Vocoder:
    def __init__(self, session_for: SessionFor, params: SpeechParams = SpeechParams()) -> None:
        self._session_for = session_for
        self.sample_rate = params.sample_rate
        self.hop_length = params.hop_length

    @classmethod
    def from_dir(cls, model_dir: Path, threads: int = 0) -> Vocoder:
        return cls(directory_sessions(model_dir, threads), SpeechParams.read(model_dir))

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """Samples (T * hop_length,) float32 in [-1, 1], clamped as infer_v2 clamps."""
        if mel.ndim != 3 or mel.shape[0] != 1:
            raise ValueError(f"mel must be (1, 80, frames), got {mel.shape}")
        (wav,) = self._session_for(BIGVGAN_GRAPH).run(None, {"mel": np.ascontiguousarray(mel, dtype=np.float32)})
        wav = wav.reshape(-1)
        if wav.shape[0] != mel.shape[2] * self.hop_length:
            # The graph and acoustic.json disagree: the folder's rate would be wrong as well.
            raise ValueError(
                f"{BIGVGAN_GRAPH} gave {wav.shape[0]} samples for {mel.shape[2]} mel frames, not "
                f"{self.hop_length} per frame as the model folder's acoustic.json says"
            )
        return np.clip(wav, -1.0, 1.0).astype(np.float32, copy=False)
