"""numpy features against the code IndexTTS2 really runs (transformers, s2mel's mel, librosa)
and, for the Kaldi fbank (torchaudio is not installable here), against a small torch
re-implementation of `torchaudio.compliance.kaldi.fbank` plus properties that pin it down."""

from __future__ import annotations

import numpy as np
import pytest

from wyoming_indextts.engines.indextts.features import (
    MelSettings,
    campplus_features,
    kaldi_fbank,
    kaldi_mel_banks,
    reference_mel,
    slaney_mel_basis,
    w2v_bert_features,
)

torch = pytest.importorskip("torch")


def noise(samples: int, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(samples) * scale).astype(np.float32)


def torch_kaldi_fbank(wav: np.ndarray, num_mel_bins: int = 80) -> np.ndarray:
    """torchaudio.compliance.kaldi.fbank(wav[None], num_mel_bins, dither=0, sample_frequency=16000),
    written out step by step with torch ops in float32 (Kaldi defaults: 25 ms frames, 10 ms shift,
    snip_edges, DC removal, pre-emphasis 0.97 with the first sample repeated, Povey window,
    512-point FFT, power spectrum, mel triangles in mel space from 20 Hz to Nyquist with a zero
    Nyquist column, log floored at float32 epsilon)."""
    x = torch.from_numpy(wav)
    count = 1 + (x.numel() - 400) // 160
    frames = x.as_strided((count, 400), (160, 1))
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.nn.functional.pad(frames.unsqueeze(0), (1, 0), mode="replicate").squeeze(0)[:, :-1]
    frames = frames - 0.97 * previous
    frames = frames * torch.hann_window(400, periodic=False).pow(0.85)
    frames = torch.nn.functional.pad(frames, (0, 112))
    power = torch.fft.rfft(frames).abs().pow(2.0)

    def mel(freq: torch.Tensor) -> torch.Tensor:
        return 1127.0 * torch.log(1.0 + freq / 700.0)

    low, high = mel(torch.tensor(20.0)), mel(torch.tensor(8000.0))
    delta = (high - low) / (num_mel_bins + 1)
    index = torch.arange(num_mel_bins).unsqueeze(1)
    left, center, right = low + index * delta, low + (index + 1) * delta, low + (index + 2) * delta
    bins = mel((16000 / 512) * torch.arange(256)).unsqueeze(0)
    banks = torch.clamp(torch.min((bins - left) / (center - left), (right - bins) / (right - center)), min=0.0)
    banks = torch.nn.functional.pad(banks, (0, 1))
    energies = power @ banks.T
    return torch.clamp(energies, min=torch.finfo(torch.float32).eps).log().numpy()


@pytest.mark.parametrize("samples", [16000 * 2 + 123, 16000 * 2 + 160 * 3 + 50, 7777])
def test_w2v_bert_features_match_transformers(samples: int) -> None:
    from transformers import SeamlessM4TFeatureExtractor

    wav = noise(samples, seed=samples)
    # facebook/w2v-bert-2.0's preprocessor_config.json: padding_value 1, stride 2, 80 bins.
    expected = SeamlessM4TFeatureExtractor(padding_value=1.0)(
        torch.from_numpy(wav)[None], sampling_rate=16000, return_tensors="np"
    )
    mine = w2v_bert_features(wav)
    assert mine.input_features.dtype == np.float32 and mine.input_features.shape[2] == 160
    assert mine.input_features.shape == expected["input_features"].shape
    np.testing.assert_allclose(mine.input_features, expected["input_features"], atol=1e-3)
    np.testing.assert_array_equal(mine.attention_mask, expected["attention_mask"])


def test_w2v_bert_features_pad_odd_frame_counts_with_mask() -> None:
    odd = w2v_bert_features(noise(400 + 160 * 4))  # 5 frames -> 3 stacked, last one padded
    assert odd.attention_mask.tolist() == [[1, 1, 0]]
    np.testing.assert_array_equal(odd.input_features[0, -1, 80:], 1.0)
    even = w2v_bert_features(noise(400 + 160 * 5))
    assert even.attention_mask.tolist() == [[1, 1, 1]]


@pytest.mark.parametrize("samples", [16000, 16000 * 3 + 99])
def test_kaldi_fbank_matches_torch_reimplementation(samples: int) -> None:
    wav = noise(samples, seed=1)
    mine = kaldi_fbank(wav)
    expected = torch_kaldi_fbank(wav)
    assert mine.shape == expected.shape == (1 + (samples - 400) // 160, 80)
    np.testing.assert_allclose(mine, expected, atol=2e-4)


def test_kaldi_fbank_equals_seamless_fbank_at_int16_scale() -> None:
    """transformers' SeamlessM4T fbank mimics Kaldi on 16-bit-scaled audio: the same log
    energies shifted by log(32768^2) (torchaudio works on the float signal as given)."""
    from transformers import SeamlessM4TFeatureExtractor

    wav = noise(16000, seed=2)
    seamless = SeamlessM4TFeatureExtractor()._extract_fbank_features(wav)
    np.testing.assert_allclose(kaldi_fbank(wav) + 2 * np.log(32768.0), seamless, atol=1e-3)


def test_kaldi_fbank_places_a_tone_in_the_right_band() -> None:
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    peak = int(kaldi_fbank(tone).mean(axis=0).argmax())
    weights = kaldi_mel_banks(80)[int(1000 / (16000 / 512))]
    assert weights[peak] > 0.0  # the loudest band is one whose triangle covers 1 kHz


def test_campplus_features_are_mean_free() -> None:
    feat = campplus_features(noise(16000 * 2, seed=3))
    assert feat.shape == (1, 198, 80)
    np.testing.assert_allclose(feat[0].mean(axis=0), 0.0, atol=1e-4)


def test_reference_mel_matches_s2mel_audio() -> None:
    from wyoming_indextts.export import official_package

    official_package()
    from indextts.s2mel.modules.audio import mel_spectrogram

    for samples in (22050 * 2 + 77, 22050 * 3):
        wav = noise(samples, seed=samples)
        expected = mel_spectrogram(
            torch.from_numpy(wav)[None],
            n_fft=1024,
            num_mels=80,
            sampling_rate=22050,
            hop_size=256,
            win_size=1024,
            fmin=0,
            fmax=None,
            center=False,
        ).numpy()
        mine = reference_mel(wav, MelSettings())
        assert mine.shape == expected.shape
        np.testing.assert_allclose(mine, expected, atol=1e-4)


def test_slaney_basis_matches_librosa() -> None:
    import librosa

    for fmax in (None, 8000.0):
        expected = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0, fmax=fmax)
        np.testing.assert_allclose(slaney_mel_basis(22050, 1024, 80, 0.0, fmax), expected, atol=1e-7)


def test_too_short_clips_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="too short"):
        w2v_bert_features(noise(300))
    with pytest.raises(ValueError, match="shorter than one"):
        campplus_features(noise(300))
    with pytest.raises(ValueError, match="too short"):
        reference_mel(noise(100))
