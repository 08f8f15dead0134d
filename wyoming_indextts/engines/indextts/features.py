"""Audio features for voice conditioning, in numpy only (no torch, torchaudio or librosa).

Three feature sets, each matching what the official IndexTTS2 pipeline computes:

- `w2v_bert_features`: transformers' `SeamlessM4TFeatureExtractor` with the
  facebook/w2v-bert-2.0 settings (80 Kaldi-style log-mel bins of 16-bit-scaled audio,
  per-utterance mean/variance normalisation per bin, padding to an even frame count with
  `padding_value` 1.0, two frames stacked -> 160 dims, plus the attention mask).
- `kaldi_fbank` / `campplus_features`: `torchaudio.compliance.kaldi.fbank(wav,
  num_mel_bins=80, dither=0, sample_frequency=16000)` (all other Kaldi defaults), minus its
  mean over time as `infer_v2` does before CAMPPlus.
- `reference_mel`: `indextts.s2mel.modules.audio.mel_spectrogram` (librosa Slaney mel
  basis, reflect padding, Hann window, magnitude, natural log clamped at 1e-5) at 22050 Hz.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .format import HOP_LENGTH, SAMPLE_RATE

KALDI_SAMPLE_RATE = 16000
KALDI_FRAME_LENGTH = 400  # 25 ms
KALDI_FRAME_SHIFT = 160  # 10 ms
KALDI_FFT = 512  # frame length rounded up to a power of two
KALDI_PREEMPHASIS = 0.97
KALDI_LOW_FREQ = 20.0
FLOAT32_EPS = float(np.finfo(np.float32).eps)  # Kaldi's log floor (torch.finfo(float).eps)


def _kaldi_mel(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


@lru_cache(maxsize=4)
def kaldi_mel_banks(num_bins: int = 80, sample_rate: int = KALDI_SAMPLE_RATE, n_fft: int = KALDI_FFT) -> np.ndarray:
    """Kaldi's triangular mel filters (triangles in mel space), shape (n_fft // 2 + 1, num_bins).

    The Nyquist bin gets a zero weight, as Kaldi pads its filters by one column.
    """
    nyquist = sample_rate / 2.0
    mel_low = _kaldi_mel(KALDI_LOW_FREQ)
    mel_high = _kaldi_mel(nyquist)
    delta = (mel_high - mel_low) / (num_bins + 1)
    edges = mel_low + delta * np.arange(num_bins + 2, dtype=np.float64)
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bin_mel = _kaldi_mel((sample_rate / n_fft) * np.arange(n_fft // 2, dtype=np.float64))[None, :]
    up = (bin_mel - left) / (center - left)
    down = (right - bin_mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    banks = np.concatenate([banks, np.zeros((num_bins, 1))], axis=1)
    banks.setflags(write=False)
    return banks.T


@lru_cache(maxsize=2)
def povey_window(length: int = KALDI_FRAME_LENGTH) -> np.ndarray:
    """Kaldi's Povey window: a symmetric Hann window to the power 0.85."""
    window = np.hanning(length) ** 0.85
    window.setflags(write=False)
    return window


def _frames(signal: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """Frames that fit entirely in the signal (Kaldi snip_edges), as a (n, frame_length) copy."""
    if signal.shape[0] < frame_length:
        return np.zeros((0, frame_length), dtype=signal.dtype)
    count = 1 + (signal.shape[0] - frame_length) // hop
    view = np.lib.stride_tricks.sliding_window_view(signal, frame_length)[::hop]
    return np.array(view[:count])


def _kaldi_spectrum(signal: np.ndarray) -> np.ndarray:
    """Kaldi framing, DC removal, pre-emphasis, Povey window, FFT: (n, 257) complex128."""
    frames = _frames(np.asarray(signal, dtype=np.float64), KALDI_FRAME_LENGTH, KALDI_FRAME_SHIFT)
    frames = frames - frames.mean(axis=1, keepdims=True)
    previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)  # first sample repeats
    frames = (frames - KALDI_PREEMPHASIS * previous) * povey_window()
    return np.fft.rfft(frames, n=KALDI_FFT, axis=1)


def _mono(wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav)
    if wav.ndim == 2:
        wav = wav[0]  # the extractors take the first channel of a (channels, samples) array
    if wav.ndim != 1:
        raise ValueError(f"expected mono audio of shape (samples,), got {wav.shape}")
    return wav.astype(np.float32, copy=False)


def kaldi_fbank(wav_16k: np.ndarray, num_mel_bins: int = 80) -> np.ndarray:
    """`torchaudio.compliance.kaldi.fbank(wav, num_mel_bins, dither=0, sample_frequency=16000)`.

    `wav_16k` is float audio in [-1, 1] (not rescaled: torchaudio does not rescale either).
    Returns (frames, num_mel_bins) float32 log mel energies.
    """
    spectrum = _kaldi_spectrum(_mono(wav_16k))
    energies = (spectrum.real**2 + spectrum.imag**2) @ kaldi_mel_banks(num_mel_bins)
    return np.log(np.maximum(energies, FLOAT32_EPS)).astype(np.float32)


def campplus_features(wav_16k: np.ndarray) -> np.ndarray:
    """CAMPPlus input as infer_v2 builds it: Kaldi fbank minus its mean over time, (1, T, 80)."""
    feat = kaldi_fbank(wav_16k)
    if feat.shape[0] == 0:
        raise ValueError("the voice clip is shorter than one 25 ms frame; use a clip of a few seconds")
    return (feat - feat.mean(axis=0, keepdims=True))[None].astype(np.float32)


@dataclass(frozen=True)
class W2vBertInput:
    input_features: np.ndarray
    """(1, frames, 160) float32."""

    attention_mask: np.ndarray
    """(1, frames) int64; 0 only where a padding frame was stacked in."""


SEAMLESS_MEL_FLOOR = 1.192092955078125e-07


def w2v_bert_features(wav_16k: np.ndarray, padding_value: float = 1.0, stride: int = 2) -> W2vBertInput:
    """SeamlessM4TFeatureExtractor(w2v-bert-2.0 settings)(wav, sampling_rate=16000).

    `padding_value` is 1.0 in facebook/w2v-bert-2.0's preprocessor_config.json.
    """
    wav = _mono(wav_16k) * np.float32(2**15)  # Kaldi compliance: 16-bit integer scale
    # transformers stores the spectrum as complex64 before taking its magnitude
    spectrum = _kaldi_spectrum(wav).astype(np.complex64)
    power = np.abs(spectrum, dtype=np.float64) ** 2
    mel = np.maximum(SEAMLESS_MEL_FLOOR, power @ kaldi_mel_banks(80))
    feat = np.log(mel)
    if feat.shape[0] < 2:
        raise ValueError("the voice clip is too short for w2v-BERT features; use a clip of a few seconds")
    feat = (feat - feat.mean(axis=0, keepdims=True)) / np.sqrt(feat.var(axis=0, ddof=1, keepdims=True) + 1e-7)
    frames = feat.shape[0]
    mask = np.ones(frames, dtype=np.int64)
    remainder = frames % stride
    if remainder:
        pad = stride - remainder
        feat = np.concatenate([feat, np.full((pad, feat.shape[1]), padding_value)], axis=0)
        mask = np.concatenate([mask, np.zeros(pad, dtype=np.int64)])
    stacked = feat.reshape(1, feat.shape[0] // stride, feat.shape[1] * stride).astype(np.float32)
    return W2vBertInput(input_features=stacked, attention_mask=mask[stride - 1 :: stride][None].copy())


# ---- 22050 Hz reference mel (s2mel/modules/audio.py) ---------------------------------------


def _slaney_hz_to_mel(freq: np.ndarray) -> np.ndarray:
    freq = np.asarray(freq, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mels = freq / f_sp
    above = freq >= min_log_hz
    return np.where(above, min_log_mel + np.log(np.maximum(freq, 1e-10) / min_log_hz) / logstep, mels)


def _slaney_mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels)


@lru_cache(maxsize=4)
def slaney_mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) (Slaney scale and norm), float32."""
    fmax = sample_rate / 2.0 if fmax is None else fmax
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    mel_points = np.linspace(_slaney_hz_to_mel(fmin), _slaney_hz_to_mel(fmax), n_mels + 2)
    hz_points = _slaney_mel_to_hz(mel_points)
    widths = np.diff(hz_points)
    ramps = hz_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_points[2:] - hz_points[:-2]))[:, None]
    basis = weights.astype(np.float32)
    basis.setflags(write=False)
    return basis


@dataclass(frozen=True)
class MelSettings:
    """The s2mel `spect_params` (config.yaml) at `sampling_rate`."""

    sampling_rate: int = SAMPLE_RATE
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = HOP_LENGTH
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = None


def reference_mel(wav_22k: np.ndarray, settings: MelSettings = MelSettings()) -> np.ndarray:
    """`mel_spectrogram(wav, ...)` of s2mel/modules/audio.py with center=False: (1, n_mels, frames)."""
    wav = _mono(wav_22k).astype(np.float64)
    pad = (settings.n_fft - settings.hop_length) // 2
    if wav.shape[0] <= pad:
        raise ValueError("the voice clip is too short for a mel spectrogram; use a clip of a few seconds")
    wav = np.pad(wav, (pad, pad), mode="reflect")
    frames = _frames(wav, settings.n_fft, settings.hop_length)
    # torch.hann_window(win_length) is periodic; centred in n_fft when shorter (torch.stft).
    window = np.zeros(settings.n_fft)
    periodic = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(settings.win_length) / settings.win_length)
    offset = (settings.n_fft - settings.win_length) // 2
    window[offset : offset + settings.win_length] = periodic
    spectrum = np.fft.rfft(frames * window, axis=1)
    magnitude = np.sqrt(spectrum.real**2 + spectrum.imag**2 + 1e-9)
    basis = slaney_mel_basis(settings.sampling_rate, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax)
    mel = basis.astype(np.float64) @ magnitude.T
    return np.log(np.maximum(mel, 1e-5))[None].astype(np.float32)
