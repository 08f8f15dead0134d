"""The official ``IndexTTS2`` class, built unmodified from the tiny official files.

``IndexTTS2.__init__`` and ``infer`` run as published; stand-ins replace only what cannot be
had on this machine:

- torchaudio (no CPU build for torch 2.13 here): ``transforms.Resample`` is torchaudio's
  sinc resampler (its torch code, below), ``compliance.kaldi.fbank`` the runtime's numpy
  Kaldi fbank (checked against Kaldi's definition in test_features);
- hub downloads (w2v-BERT 2.0, its feature extractor, the MaskGCT codec, CAMPPlus, BigVGAN):
  the tiny local files; the feature extractor is transformers' own, built locally;
- nemo text normalisation: the identity, so the text given must be one nemo leaves as it is
  (plain words, no digits or symbols); the rest of the official TextNormalizer and
  TextTokenizer runs;
- QwenEmotion (emotion from text; only used with ``use_emo_text``): refuses to be called.

Random draws: ``draws_from(rng)`` answers transformers' ``torch.multinomial`` and the flow
matching's ``torch.randn`` from a numpy generator, in the order the engine draws them.
"""

from __future__ import annotations

import contextlib
import math
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from wyoming_indextts.engines.indextts.features import kaldi_fbank
from wyoming_indextts.export import official_package
from wyoming_indextts.export.official_acoustic import import_semantic_codec_builder


def torchaudio_resample(waveform: torch.Tensor, orig_freq: int, new_freq: int) -> torch.Tensor:
    """torchaudio.transforms.Resample(orig_freq, new_freq) with its defaults (torch code of
    `_get_sinc_resample_kernel` / `_apply_sinc_resample_kernel`, sinc_interp_hann, width 6)."""
    if orig_freq == new_freq:
        return waveform
    gcd = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // gcd, new_freq // gcd
    lowpass_filter_width, rolloff = 6, 0.99
    base_freq = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base_freq)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=None)[:, None, None] / new + idx
    t *= base_freq
    t = t.clamp_(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t *= math.pi
    scale = base_freq / orig
    kernels = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernels *= window * scale
    kernel = kernels.to(dtype=torch.float32)
    shape = waveform.size()
    waveform = waveform.view(-1, shape[-1])
    num_wavs, length = waveform.shape
    waveform = torch.nn.functional.pad(waveform, (width, width + orig))
    resampled = torch.nn.functional.conv1d(waveform[:, None], kernel, stride=orig)
    resampled = resampled.transpose(1, 2).reshape(num_wavs, -1)
    target_length = torch.ceil(torch.as_tensor(new * length / orig)).long()
    resampled = resampled[..., :target_length]
    return resampled.view(shape[:-1] + resampled.shape[-1:])


class _Resample:
    def __init__(self, orig_freq: int, new_freq: int) -> None:
        self.orig_freq, self.new_freq = orig_freq, new_freq

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        return torchaudio_resample(waveform, self.orig_freq, self.new_freq)


def _fbank(waveform: torch.Tensor, num_mel_bins: int, dither: float, sample_frequency: int) -> torch.Tensor:
    assert dither == 0 and sample_frequency == 16000 and waveform.shape[0] == 1
    return torch.from_numpy(kaldi_fbank(waveform[0].numpy(), num_mel_bins=num_mel_bins))


def _torchaudio_stand_in() -> types.ModuleType:
    module = types.ModuleType("torchaudio")
    module.transforms = types.SimpleNamespace(Resample=_Resample)
    module.compliance = types.SimpleNamespace(kaldi=types.SimpleNamespace(fbank=_fbank))

    def save(*args, **kwargs):
        raise AssertionError("the parity test reads infer's samples; it never writes a file")

    module.save = save
    return module


def import_infer_v2() -> types.ModuleType:
    """``indextts.infer_v2`` imported with the torchaudio stand-in (kept out of sys.modules
    afterwards, so nothing else mistakes it for the real package)."""
    official_package()
    if "indextts.infer_v2" in sys.modules:
        return sys.modules["indextts.infer_v2"]
    import_semantic_codec_builder()  # the codec modules need their own torchaudio stand-in
    had = sys.modules.get("torchaudio")
    sys.modules["torchaudio"] = had or _torchaudio_stand_in()
    try:
        import indextts.infer_v2 as infer_v2
    finally:
        if had is None:
            del sys.modules["torchaudio"]
    return infer_v2


class _IdentityNemo:
    def normalize(self, text: str, verbose: bool = False) -> str:
        return text


class _NoQwenEmotion:
    def __init__(self, model_dir: str) -> None:
        pass

    def inference(self, text: str):
        raise AssertionError("emotion from text needs the Qwen model, which is not here")


def build_official_indextts2(tiny, workdir: Path, monkeypatch: pytest.MonkeyPatch):
    """``IndexTTS2(model_dir, cfg_path, device="cpu")`` on the tiny files (`tiny` is the
    conftest's TinyCheckpoints)."""
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertModel

    infer_v2 = import_infer_v2()
    from indextts.utils import front, maskgct_utils

    local_files = {
        ("amphion/MaskGCT", "semantic_codec/model.safetensors"): tiny.semantic_codec,
        ("funasr/campplus", "campplus_cn_common.bin"): tiny.campplus,
    }

    def hf_hub_download(repo_id: str, filename: str, **kwargs) -> str:
        return str(local_files[(repo_id, filename)])

    def w2v_bert(name: str):
        assert name == "facebook/w2v-bert-2.0"
        return Wav2Vec2BertModel.from_pretrained(str(tiny.w2v_bert))

    def feature_extractor(name: str):
        assert name == "facebook/w2v-bert-2.0"
        return SeamlessM4TFeatureExtractor(padding_value=1.0)

    monkeypatch.setattr(infer_v2, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(infer_v2, "SeamlessM4TFeatureExtractor", types.SimpleNamespace(from_pretrained=feature_extractor))
    monkeypatch.setattr(maskgct_utils, "Wav2Vec2BertModel", types.SimpleNamespace(from_pretrained=w2v_bert))
    monkeypatch.setattr(infer_v2, "QwenEmotion", _NoQwenEmotion)
    monkeypatch.setattr(front.TextNormalizer, "_get_nemo_normalizer", lambda self, lang: _IdentityNemo())

    cfg = OmegaConf.load(tiny.checkpoints / "config.yaml")
    cfg.vocoder.name = str(tiny.bigvgan)  # BigVGAN.from_pretrained reads a local folder as is
    cfg_path = workdir / "config.yaml"
    OmegaConf.save(cfg, cfg_path)
    return infer_v2.IndexTTS2(model_dir=str(tiny.checkpoints), cfg_path=str(cfg_path), device="cpu")


@contextlib.contextmanager
def draws_from(rng: np.random.Generator) -> Iterator[None]:
    """transformers' ``torch.multinomial(probs, 1)`` → ``rng.choice(n, p=probs)`` (the
    runtime Sampler's draw) and the flow matching's ``torch.randn([1, 80, T])`` →
    ``rng.standard_normal((1, 80, T), float32)`` (the engine's noise draw)."""
    multinomial, randn = torch.multinomial, torch.randn

    def draw(probs: torch.Tensor, num_samples: int, *args, **kwargs) -> torch.Tensor:
        assert num_samples == 1 and probs.shape[0] == 1, "one beam, one draw per step"
        p = probs[0].double().numpy()
        return torch.tensor([[int(rng.choice(p.shape[0], p=p / p.sum()))]])

    def noise(*size, **kwargs) -> torch.Tensor:
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (list, tuple, torch.Size)) else size
        assert len(shape) == 3 and shape[0] == 1, f"unexpected torch.randn{shape}"
        return torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))

    torch.multinomial, torch.randn = draw, noise
    try:
        yield
    finally:
        torch.multinomial, torch.randn = multinomial, randn
