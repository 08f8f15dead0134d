"""Build IndexTTS2's official acoustic modules at the tiny test size and write them as the
official files (same names, same layouts), so the exporter and the parity tests read them
exactly like the real checkpoints.

Random weights, fixed seed. Every parameter (and every BatchNorm statistic) is perturbed after
construction so no layer is an identity or a zero: a parity test then checks real arithmetic.

Two further tweaks make every input matter, as in a trained model (measured in
tests/indextts/test_parity_sensitivity.py, which fails if one of them goes inert again):

- DiT: the scale half of every adaptive LayerNorm's projection gets +1 (random init leaves
  the scale near 0.2, so the transformer, and with it content, style, prompt mel and CFG,
  only moved the mel by 0.3-5 %: the noise passed through the long skip dominated), the
  content projection x4 and the noise columns of the long skip x0.2;
- BigVGAN: biases x0.1 (still non-zero): perturbed biases made fixed lines (DC, fs/4, fs/2)
  99 % of the output energy whatever the mel.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from wyoming_indextts.export import official_package
from wyoming_indextts.export.official_acoustic import AcousticSources, import_semantic_codec_builder

TINY_CONFIG = Path(__file__).with_name("tiny_config.yaml")

# w2v-BERT: IndexTTS2 reads hidden layer 17 and its features are 1024 wide (stats, codec, GPT
# conditioning all expect 1024), so keep depth 17 and width 1024; shrink everything else.
TINY_W2V_BERT = {
    "hidden_size": 1024,
    "num_hidden_layers": 17,
    "num_attention_heads": 4,
    "intermediate_size": 32,
    "conv_depthwise_kernel_size": 5,
    "feature_projection_input_dim": 160,
    "left_max_position_embeddings": 8,
    "right_max_position_embeddings": 4,
}

# BigVGAN v2 22 kHz layout (upsampling 4*4*2*2*2*2 = 256 = hop), narrow channels.
TINY_BIGVGAN = {
    "resblock": "1",
    "upsample_rates": [4, 4, 2, 2, 2, 2],
    "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4],
    "upsample_initial_channel": 128,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "use_tanh_at_final": False,
    "use_bias_at_final": False,
    "activation": "snakebeta",
    "snake_logscale": True,
    "num_mels": 80,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "sampling_rate": 22050,
    "fmin": 0,
    "fmax": None,
}


def _perturb(module: nn.Module, generator: torch.Generator, scale: float) -> None:
    """Add seeded noise to every parameter and make BatchNorm statistics non-trivial."""
    with torch.no_grad():
        for param in module.parameters():
            noise = torch.randn(param.shape, generator=generator) * scale
            param.add_(noise * param.detach().abs().mean().clamp(min=0.1))
        for sub in module.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm) and sub.running_mean is not None:
                sub.running_mean.copy_(torch.randn(sub.running_mean.shape, generator=generator) * 0.1)
                sub.running_var.copy_(1.0 + torch.rand(sub.running_var.shape, generator=generator))


def _make_conditioning_matter(s2mel: nn.Module, in_channels: int) -> None:
    """Give the DiT's conditioning an absolute weight (see the module docstring)."""
    estimator = s2mel.models["cfm"].estimator
    with torch.no_grad():
        for module in estimator.modules():
            if module.__class__.__name__ == "AdaptiveLayerNorm":
                module.project_layer.bias[: module.d_model] += 1.0
        estimator.cond_projection.weight.mul_(4.0)
        estimator.skip_linear.weight[:, -in_channels:].mul_(0.2)


def _quiet_vocoder_biases(vocoder: nn.Module) -> None:
    with torch.no_grad():
        for name, param in vocoder.named_parameters():
            if name.endswith("bias"):
                param.mul_(0.1)


def build_tiny_acoustic(
    out_dir: Path,
    config_path: Path = TINY_CONFIG,
    seed: int = 1234,
    w2v_bert: dict | None = None,
    bigvgan_config: dict | None = None,
) -> AcousticSources:
    """Write tiny official-looking acoustic files into `out_dir`; return where they are.

    `w2v_bert` (Wav2Vec2BertConfig arguments) and `bigvgan_config` (config.json content)
    replace the tiny sizes, e.g. with the real ones for a full-size benchmark.
    """
    w2v_bert = TINY_W2V_BERT if w2v_bert is None else w2v_bert
    bigvgan_config = TINY_BIGVGAN if bigvgan_config is None else bigvgan_config
    import safetensors.torch
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    official_package()
    from indextts.s2mel.modules.bigvgan import bigvgan
    from indextts.s2mel.modules.bigvgan.env import AttrDict
    from indextts.s2mel.modules.campplus.DTDNN import CAMPPlus
    from indextts.s2mel.modules.commons import MyModel

    build_semantic_codec = import_semantic_codec_builder()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = OmegaConf.load(config_path)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)

    w2v_dir = out_dir / "w2v-bert-2.0"
    w2v = Wav2Vec2BertModel(Wav2Vec2BertConfig(**w2v_bert)).eval()
    _perturb(w2v, generator, 0.05)
    w2v.save_pretrained(str(w2v_dir))

    stats = out_dir / "wav2vec2bert_stats.pt"
    torch.save({"mean": torch.randn(1024, generator=generator) * 0.1, "var": 0.5 + torch.rand(1024, generator=generator)}, stats)

    codec = build_semantic_codec(cfg.semantic_codec)
    _perturb(codec, generator, 0.2)
    codec_path = out_dir / "semantic_codec" / "model.safetensors"
    codec_path.parent.mkdir(exist_ok=True)
    safetensors.torch.save_model(codec, str(codec_path))

    s2mel = MyModel(cfg.s2mel, use_gpt_latent=True)
    _perturb(s2mel, generator, 0.2)
    _make_conditioning_matter(s2mel, int(cfg.s2mel.DiT.in_channels))
    s2mel_path = out_dir / "s2mel.pth"
    torch.save({"net": {key: module.state_dict() for key, module in s2mel.models.items()}}, s2mel_path)

    campplus = CAMPPlus(feat_dim=80, embedding_size=192)
    _perturb(campplus, generator, 0.2)
    campplus_path = out_dir / "campplus_cn_common.bin"
    torch.save(campplus.state_dict(), campplus_path)

    bigvgan_dir = out_dir / "bigvgan"
    bigvgan_dir.mkdir(exist_ok=True)
    vocoder = bigvgan.BigVGAN(AttrDict(dict(bigvgan_config)), use_cuda_kernel=False)
    _perturb(vocoder, generator, 0.2)
    _quiet_vocoder_biases(vocoder)
    torch.save({"generator": vocoder.state_dict()}, bigvgan_dir / "bigvgan_generator.pt")
    (bigvgan_dir / "config.json").write_text(json.dumps(bigvgan_config, indent=2) + "\n")

    return tiny_acoustic_sources(out_dir)


def tiny_acoustic_sources(out_dir: Path) -> AcousticSources:
    """Where build_tiny_acoustic wrote the files in `out_dir`."""
    out_dir = Path(out_dir)
    return AcousticSources(
        s2mel_checkpoint=out_dir / "s2mel.pth",
        w2v_stats=out_dir / "wav2vec2bert_stats.pt",
        w2v_bert_dir=out_dir / "w2v-bert-2.0",
        semantic_codec=out_dir / "semantic_codec" / "model.safetensors",
        campplus=out_dir / "campplus_cn_common.bin",
        bigvgan_dir=out_dir / "bigvgan",
    )
