"""Build IndexTTS-2.5's official files at the tiny test size, laid out as the published folder:
config.yaml, gpt.pth, s2mel.pth, codec.pth, the tiktoken vocabulary, feat1.pt, feat2.pt,
wav2vec2bert_stats.pt and hf_cache/ (w2v-BERT 2.0, CAMPPlus, BigVGAN: the tiny 2.0 ones, which
2.5 uses unchanged).

Random weights from a fixed seed, built with the official `indextts25` modules (the s2mel with
2.0's module, whose checkpoint layout 2.5 reads: weight-normed, folded at load). The tweaks of
the 2.0 tiny models carry over so every code path matters:

- every parameter perturbed (`tiny_acoustic._perturb`), LayerNorm offsets given an absolute
  value, the language embedding rows distinct (a wrong language id changes the codes);
- the DiT conditioning and BigVGAN biases as in tiny_acoustic;
- the stop token's bias in ``mel_head`` set so greedy decoding runs a few dozen codes and then
  stops by itself.
"""

from __future__ import annotations

import base64
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from tests.indextts.tiny_acoustic import _make_conditioning_matter, _perturb

TINY25_CONFIG = Path(__file__).with_name("tiny25_config.yaml")
TOKENIZER_NAME = "multilingual_zh_ja_yue_char_del"
"""The vocabulary name infer_v2_5 asks `get_encoding` for (`<name>.tiktoken`)."""
STOP_BIAS = 1.6
NORM_OFFSET_STD = 0.2

VOCAB_WORDS = [
    " the", " lights", " kitchen", " turn", " on", " off", " good", " morning", " hello",
    " world", " weather", " today", " sunny", "今天", "天气", "很好", "客厅", "灯", "こんにちは",
    " hola", " buenos", " días", " el", " tiempo", "مرحبا", " شكرا",
]


def write_tiny_tiktoken(path: Path) -> Path:
    """A byte-level tiktoken vocabulary: the 256 bytes in GPT-2's order (printable ASCII first,
    so "!" is id 0 — also the start id — and '"' id 1, the stop id, as in the real vocabulary),
    then every prefix of a few words (so the BPE merges reach them). The official
    `get_encoding` appends its special tokens."""
    printable = list(range(ord("!"), ord("~") + 1))
    ranks: list[bytes] = [bytes([b]) for b in printable + [b for b in range(256) if b not in printable]]
    seen = set(ranks)
    for word in VOCAB_WORDS:
        data = word.encode("utf-8")
        for end in range(2, len(data) + 1):
            piece = data[:end]
            if piece not in seen:
                seen.add(piece)
                ranks.append(piece)
    lines = [f"{base64.b64encode(token).decode()} {rank}" for rank, token in enumerate(ranks)]
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny25_config(tokenizer_path: Path):
    """The tiny config with gpt.number_text_tokens = the tokenizer's size (specials included)."""
    from indextts25.utils.tokenizer import get_encoding

    cfg = OmegaConf.load(TINY25_CONFIG)
    encoding = get_encoding.__wrapped__(TOKENIZER_NAME, model_dir=str(tokenizer_path.parent))
    cfg.gpt.number_text_tokens = int(encoding.n_vocab)
    return cfg


def build_tiny_gpt25(cfg, seed: int = 2025):
    from indextts25.gpt.model_v2 import UnifiedVoice

    torch.manual_seed(seed)
    model = UnifiedVoice(**OmegaConf.to_container(cfg.gpt, resolve=True))
    generator = torch.Generator().manual_seed(seed + 1)
    _perturb(model, generator, 0.2)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm) and module.bias is not None:
                module.bias.add_(torch.randn(module.bias.shape, generator=generator) * NORM_OFFSET_STD)
        model.mel_head.bias[int(cfg.gpt.stop_mel_token)] = STOP_BIAS
    return model.eval()


def build_tiny_codec25(cfg, seed: int = 2026):
    from indextts25.codec.models import EnhancedCodec

    torch.manual_seed(seed)
    codec = EnhancedCodec(**OmegaConf.to_container(cfg.semantic_codec, resolve=True))
    _perturb(codec, torch.Generator().manual_seed(seed + 1), 0.2)
    return codec.eval()


def build_tiny_s2mel25(cfg, seed: int = 2027):
    """2.0's s2mel module without gpt_layer: 2.5's checkpoint layout (weight-normed)."""
    from wyoming_indextts.export import official_package

    official_package()
    from indextts.s2mel.modules.commons import MyModel

    torch.manual_seed(seed)
    s2mel = MyModel(cfg.s2mel, use_gpt_latent=False)
    _perturb(s2mel, torch.Generator().manual_seed(seed + 1), 0.2)
    _make_conditioning_matter(s2mel, int(cfg.s2mel.DiT.in_channels))
    return s2mel.eval()


def write_tiny25_checkpoints(out_dir: Path, aux: Path, seed: int = 2025) -> Path:
    """Write the tiny 2.5 folder into `out_dir`; `aux` is the tiny 2.0 folder whose w2v-BERT,
    CAMPPlus and BigVGAN go to `hf_cache/` (hard links)."""
    from transformers import SeamlessM4TFeatureExtractor

    from tests.indextts.conftest import copy_model_dir, _link_or_copy

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = write_tiny_tiktoken(out_dir / f"{TOKENIZER_NAME}.tiktoken")
    cfg = tiny25_config(tokenizer)
    OmegaConf.save(cfg, out_dir / "config.yaml")

    gpt = build_tiny_gpt25(cfg, seed)
    torch.save({"model": gpt.state_dict()}, out_dir / "gpt.pth")
    codec = build_tiny_codec25(cfg, seed + 10)
    torch.save({"model": codec.state_dict()}, out_dir / "codec.pth")
    s2mel = build_tiny_s2mel25(cfg, seed + 20)
    torch.save({"net": {key: module.state_dict() for key, module in s2mel.models.items()}}, out_dir / "s2mel.pth")

    generator = torch.Generator().manual_seed(seed + 30)
    total = sum(int(n) for n in cfg.emo_num)
    torch.save(torch.randn(total, 192, generator=generator), out_dir / "feat1.pt")
    torch.save(torch.randn(total, int(cfg.gpt.model_dim), generator=generator) * 0.05, out_dir / "feat2.pt")
    torch.save(
        {"mean": torch.randn(1024, generator=generator) * 0.1, "var": 0.5 + torch.rand(1024, generator=generator)},
        out_dir / "wav2vec2bert_stats.pt",
    )

    hf_cache = out_dir / "hf_cache"
    hf_cache.mkdir(exist_ok=True)
    copy_model_dir(aux / "w2v-bert-2.0", hf_cache / "w2v-bert-2.0")
    # infer_v2_5 reads the feature extractor from the w2v-BERT folder (2.0 built it by name).
    SeamlessM4TFeatureExtractor(padding_value=1.0).save_pretrained(str(hf_cache / "w2v-bert-2.0"))
    _link_or_copy(str(aux / "campplus_cn_common.bin"), str(hf_cache / "campplus_cn_common.bin"))
    copy_model_dir(aux / "bigvgan", hf_cache / "bigvgan")
    return out_dir
