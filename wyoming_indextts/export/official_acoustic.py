"""The official acoustic modules of IndexTTS-2 built from local files only, as
`infer_v2.IndexTTS2` builds them: w2v-BERT 2.0 and its statistics, the MaskGCT semantic codec,
s2mel, CAMPPlus and BigVGAN. The exporter (`export.acoustic`) loads them one at a time; the
parity tests load them all at once (`load_official_acoustic`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wyoming_indextts.export import official_package


@dataclass(frozen=True)
class AcousticSources:
    """Where the official acoustic files are."""

    s2mel_checkpoint: Path
    w2v_stats: Path
    w2v_bert_dir: Path
    semantic_codec: Path | None
    """None for IndexTTS-2.5, whose s2mel reads the decoded codes and has no gpt_layer."""
    campplus: Path
    bigvgan_dir: Path

    def check(self) -> None:
        """Fail early, naming the missing file and what it is."""
        wanted = {
            self.s2mel_checkpoint: "s2mel checkpoint (s2mel.pth from IndexTeam/IndexTTS-2)",
            self.w2v_stats: "w2v-BERT statistics (wav2vec2bert_stats.pt from IndexTeam/IndexTTS-2)",
            self.w2v_bert_dir / "config.json": "w2v-BERT 2.0 folder (facebook/w2v-bert-2.0)",
            self.campplus: "CAMPPlus speaker model (funasr/campplus campplus_cn_common.bin)",
            self.bigvgan_dir / "config.json": "BigVGAN config (nvidia/bigvgan_v2_22khz_80band_256x)",
            self.bigvgan_dir / "bigvgan_generator.pt": "BigVGAN weights (nvidia/bigvgan_v2_22khz_80band_256x)",
        }
        if self.semantic_codec is not None:
            wanted[self.semantic_codec] = "MaskGCT semantic codec (amphion/MaskGCT semantic_codec/model.safetensors)"
        for path, what in wanted.items():
            if not Path(path).exists():
                raise FileNotFoundError(f"{path} is missing: download the {what} and point the exporter at it")


@dataclass
class OfficialAcoustic:
    """The official PyTorch modules, loaded from the official files (eval mode, CPU)."""

    semantic_model: nn.Module
    semantic_mean: torch.Tensor
    semantic_std: torch.Tensor
    semantic_codec: nn.Module | None
    s2mel: nn.Module
    campplus: nn.Module
    bigvgan: nn.Module


def import_semantic_codec_builder() -> Callable[[Any], nn.Module]:
    """`indextts.utils.maskgct_utils.build_semantic_codec`, importable without torchaudio.

    The codec's `vocos.py` imports two mel-scale helpers from torchaudio at module level for a
    class the codec never uses. torchaudio has no CPU build for torch 2.13, so a stand-in
    module provides them (HTK formulas, as torchaudio's defaults) only while the codec modules
    import; it is removed again so nothing else mistakes it for torchaudio.
    """
    import importlib.machinery
    import math
    import sys
    import types

    official_package()
    if "indextts.utils.maskgct_utils" not in sys.modules:
        try:
            import torchaudio  # noqa: F401
        except ImportError:
            stand_in = {}
            for name in ("torchaudio", "torchaudio.functional", "torchaudio.functional.functional"):
                module = types.ModuleType(name)
                module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
                module.__path__ = []
                stand_in[name] = module
            functional = stand_in["torchaudio.functional.functional"]
            functional._hz_to_mel = lambda freq, mel_scale="htk": 2595.0 * math.log10(1.0 + freq / 700.0)
            functional._mel_to_hz = lambda mels, mel_scale="htk": 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
            sys.modules.update(stand_in)
            try:
                import indextts.utils.maskgct_utils  # noqa: F401
            finally:
                for name in stand_in:
                    sys.modules.pop(name, None)
    from indextts.utils.maskgct_utils import build_semantic_codec

    return build_semantic_codec


def load_semantic_model(paths: AcousticSources) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """w2v-BERT 2.0 and the mean and std IndexTTS2 normalises its layer 17 with."""
    from transformers import Wav2Vec2BertModel

    semantic_model = Wav2Vec2BertModel.from_pretrained(str(paths.w2v_bert_dir), local_files_only=True).eval()
    stats = torch.load(paths.w2v_stats, map_location="cpu")
    return semantic_model, stats["mean"].float(), torch.sqrt(stats["var"]).float()


def load_semantic_codec(cfg: Any, paths: AcousticSources) -> nn.Module:
    import safetensors.torch

    semantic_codec = import_semantic_codec_builder()(cfg.semantic_codec)
    safetensors.torch.load_model(semantic_codec, str(paths.semantic_codec))
    return semantic_codec.eval()


def load_s2mel(cfg: Any, paths: AcousticSources) -> nn.Module:
    official_package()
    from indextts.s2mel.modules.commons import MyModel, load_checkpoint2

    # IndexTTS-2.5 (no MaskGCT codec): same s2mel checkpoint layout, without gpt_layer.
    s2mel = MyModel(cfg.s2mel, use_gpt_latent=paths.semantic_codec is not None)
    s2mel, _, _, _ = load_checkpoint2(
        s2mel, None, str(paths.s2mel_checkpoint), load_only_params=True, ignore_modules=[], is_distributed=False
    )
    s2mel.models["cfm"].estimator.setup_caches(max_batch_size=1, max_seq_length=8192)
    return s2mel.eval()


def load_campplus(paths: AcousticSources) -> nn.Module:
    official_package()
    from indextts.s2mel.modules.campplus.DTDNN import CAMPPlus

    campplus = CAMPPlus(feat_dim=80, embedding_size=192)
    campplus.load_state_dict(torch.load(paths.campplus, map_location="cpu"))
    return campplus.eval()


def load_bigvgan(paths: AcousticSources) -> nn.Module:
    official_package()
    from indextts.s2mel.modules.bigvgan import bigvgan

    vocoder = bigvgan.BigVGAN.from_pretrained(str(paths.bigvgan_dir), use_cuda_kernel=False)
    vocoder.remove_weight_norm()
    return vocoder.eval()


def load_official_acoustic(cfg: Any, paths: AcousticSources) -> OfficialAcoustic:
    """Build the official modules exactly as `infer_v2.IndexTTS2` does, from local files only.

    `cfg` is the model's config.yaml loaded with OmegaConf. (The exporter loads them one at a
    time instead, see `export_acoustic`.)
    """
    paths.check()
    semantic_model, semantic_mean, semantic_std = load_semantic_model(paths)
    return OfficialAcoustic(
        semantic_model=semantic_model,
        semantic_mean=semantic_mean,
        semantic_std=semantic_std,
        semantic_codec=load_semantic_codec(cfg, paths) if paths.semantic_codec is not None else None,
        s2mel=load_s2mel(cfg, paths),
        campplus=load_campplus(paths),
        bigvgan=load_bigvgan(paths),
    )
