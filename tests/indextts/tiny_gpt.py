"""Build IndexTTS-2's official GPT (UnifiedVoice v2) at the tiny test size and write it as the
official files: config.yaml, gpt.pth, feat1.pt, feat2.pt and a small bpe.model.

Random weights from a fixed seed. Tweaks keep every code path alive:

- every parameter is perturbed like the acoustic side (``tiny_acoustic._perturb``), and every
  LayerNorm's offset gets an absolute one: after the official init the norm scales are 1 and
  offsets and biases 0, so a dropped or swapped norm or bias changed nothing
  (test_parity_sensitivity checks that the codes react to each norm);
- the speed ("duration") embedding is initialised with std 0 by the official code, so it is
  re-drawn: the two rows it appends to the conditioning are then checked too;
- the stop token's bias in ``mel_head`` is raised so that greedy decoding stops by itself
  after a few dozen codes (tests see the stop-token path, not only the length limit).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from tests.indextts.tiny_acoustic import _perturb

TINY_CONFIG = Path(__file__).with_name("tiny_config.yaml")
STOP_BIAS = 1.2
NORM_OFFSET_STD = 0.2
EMO_NUM = (3, 17, 2, 8, 4, 5, 10, 24)

BPE_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Turn on the kitchen lights and set the thermostat to twenty one degrees.",
    "Good morning! The weather today is sunny with a light breeze.",
    "Your package has been delivered to the front door.",
    "The washing machine has finished its cycle.",
    "Remember to take out the recycling on Thursday evening.",
    "HELLO WORLD, THIS IS A TEST OF THE SPEECH SYSTEM.",
    "今天天气很好，我们去公园散步吧。",
    "客厅的灯已经打开了。",
    "请记得明天早上八点开会。",
    "欢迎回家，晚饭已经准备好了。",
]


def build_tiny_gpt(config_path: Path = TINY_CONFIG, seed: int = 1234):
    """The official UnifiedVoice at the tiny size, eval mode, ready for inference_speech."""
    from wyoming_indextts.export.gpt import build_unified_voice

    cfg = OmegaConf.load(config_path)
    torch.manual_seed(seed)
    model = build_unified_voice(cfg.gpt)
    generator = torch.Generator().manual_seed(seed + 1)
    _perturb(model, generator, 0.2)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm) and module.bias is not None:
                module.bias.add_(torch.randn(module.bias.shape, generator=generator) * NORM_OFFSET_STD)
        model.speed_emb.weight.copy_(torch.randn(model.speed_emb.weight.shape, generator=generator) * 0.02)
        model.mel_head.bias[int(cfg.gpt.stop_mel_token)] = STOP_BIAS
    model.eval()
    return model


def make_bpe_model(path: Path, vocab_size: int = 256) -> Path:
    """A small SentencePiece BPE model standing in for IndexTTS-2's 12000-piece bpe.model."""
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(BPE_CORPUS * 4),
        model_writer=buffer,
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=1.0,
        byte_fallback=False,
        unk_id=2,
        bos_id=0,
        eos_id=1,
        pad_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    path.write_bytes(buffer.getvalue())
    return path


def write_tiny_gpt_checkpoints(out_dir: Path, config_path: Path = TINY_CONFIG, seed: int = 1234):
    """Write config.yaml, gpt.pth, feat1.pt, feat2.pt, bpe.model into `out_dir`; return the model."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config_path, out_dir / "config.yaml")
    model = build_tiny_gpt(config_path, seed)
    torch.save({"model": model.state_dict()}, out_dir / "gpt.pth")
    cfg = OmegaConf.load(config_path)
    generator = torch.Generator().manual_seed(seed + 2)
    total = sum(int(n) for n in cfg.emo_num)
    torch.save(torch.randn(total, 192, generator=generator), out_dir / "feat1.pt")
    torch.save(torch.randn(total, int(cfg.gpt.model_dim), generator=generator) * 0.05, out_dir / "feat2.pt")
    make_bpe_model(out_dir / "bpe.model")
    model.post_init_gpt2_config(use_deepspeed=False, kv_cache=True, half=False)
    return model
