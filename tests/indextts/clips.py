"""Speech-like test clips, without torch (the engine's own processes must not import it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def voiced_clip(seconds: float, rate: int, seed: int = 0, level: float = 0.1) -> np.ndarray:
    """A speech-like signal: a gliding harmonic tone with a syllable envelope and a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 130.0 + 35.0 * np.sin(2 * np.pi * 1.1 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 14))
    envelope = 0.4 + 0.6 * np.sin(2 * np.pi * 2.3 * t + seed) ** 2
    noise = np.random.default_rng(seed).standard_normal(t.shape)
    return (level * envelope * voiced / 3 + 0.01 * noise).astype(np.float32)


def write_clip(path: Path, samples: np.ndarray, rate: int) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate, subtype="PCM_16")
    return path
