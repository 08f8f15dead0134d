"""Export IndexTTS-2.5's semantic codec decoder (`codec.pth`) to ONNX: ``codec_decode.onnx``.

2.0 turned codes back into features with the MaskGCT quantizer's ``vq2emb`` and added the GPT
latent; 2.5 decodes the 25 Hz codes alone with ``EnhancedCodec.decode`` (factorised VQ
embedding → Vocos ConvNeXt backbone → linear → nearest 2x upsampling → conv): codes (1, N)
int64 → features (1, 2N, 1024) at 50 Hz. The length regulator then runs on them with the
prompt regulator graph (the same module and weights as for the voice's prompt), at a length
the runtime computes with the speech-rate factor.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..engines.indextts.format import CODEC_DECODE_GRAPH, graph_file
from .gpt import _export, _plain


def load_codec25(codec_cfg: Any, checkpoint: str | os.PathLike[str]) -> nn.Module:
    """EnhancedCodec with the official weights, as infer_v2_5 loads it."""
    from indextts25.codec.models import EnhancedCodec

    codec = EnhancedCodec(**_plain(codec_cfg))
    codec.load_checkpoint(os.fspath(checkpoint), "cpu")
    return codec.eval()


class CodecDecode(nn.Module):
    def __init__(self, codec: nn.Module) -> None:
        super().__init__()
        self.codec = codec

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codec.decode(codes)


def export_codec_decode(codec: nn.Module, out_dir: Path) -> Path:
    path = out_dir / graph_file(CODEC_DECODE_GRAPH)
    _export(
        CodecDecode(codec),
        (torch.randint(0, 1000, (1, 23)),),
        path,
        ["codes"],
        ["features"],
        {"codes": {1: "codes"}, "features": {1: "frames"}},
    )
    return path
