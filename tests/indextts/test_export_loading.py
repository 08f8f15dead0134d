"""The exporter's memory-saving GPT loader (meta device + memory-mapped checkpoint, assign)
gives exactly the model the official `load_checkpoint` gives. With a float32 checkpoint the
parity tests already show it (every tiny export goes through it); a half-precision checkpoint
takes the cast path, checked here."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.indextts.conftest import TinyCheckpoints  # noqa: E402


def official_model(cfg, checkpoint: Path):
    from wyoming_indextts.export import official_package
    from wyoming_indextts.export.gpt import build_unified_voice

    official_package()
    from indextts.utils.checkpoint import load_checkpoint

    model = build_unified_voice(cfg.gpt)
    load_checkpoint(model, str(checkpoint))
    model.eval()
    model.post_init_gpt2_config(use_deepspeed=False, kv_cache=True, half=False)  # as infer_v2 does
    return model


def test_mapped_half_precision_gpt_equals_the_official_load(tiny_checkpoints: TinyCheckpoints, tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from wyoming_indextts.export.gpt import load_unified_voice

    cfg = OmegaConf.load(tiny_checkpoints.checkpoints / "config.yaml")
    state = torch.load(tiny_checkpoints.checkpoints / "gpt.pth", map_location="cpu")["model"]
    checkpoint = tmp_path / "gpt16.pth"
    torch.save({"model": {k: v.half() if v.is_floating_point() else v for k, v in state.items()}}, checkpoint)
    del state
    expected = official_model(cfg, checkpoint).state_dict()
    loaded = load_unified_voice(cfg.gpt, checkpoint)
    actual = loaded.state_dict()
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert actual[key].dtype == value.dtype, key
        assert torch.equal(actual[key], value), key
    assert not any(t.is_meta for t in (*loaded.parameters(), *loaded.buffers()))
