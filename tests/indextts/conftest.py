"""Session fixtures for the IndexTTS tests: a tiny official-looking checkpoint folder, built
once, and the model folder the project's real exporter makes from it (also once).

benchmarks/plant_bugs.py runs the parity tests once per planted bug; two environment
variables let those runs share what a planted bug cannot change:
``WYOMING_INDEXTTS_TINY_CACHE`` (a folder: the tiny official files are built there once and
reused) and ``WYOMING_INDEXTTS_TINY_MODEL`` / ``WYOMING_INDEXTTS_TINY25_MODEL`` (an exported
2.0 / 2.5 model folder to use instead of exporting again; set only for bugs planted in the
runtime, never in the exporter)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.indextts.clips import voiced_clip, write_clip  # noqa: F401 - used by the test modules

torch = pytest.importorskip("torch")


@dataclass
class TinyCheckpoints:
    """The official files at the tiny size, as an IndexTTS-2 user would have them."""

    checkpoints: Path
    """config.yaml, gpt.pth, s2mel.pth, bpe.model, wav2vec2bert_stats.pt, feat1.pt, feat2.pt"""
    w2v_bert: Path
    semantic_codec: Path
    campplus: Path
    bigvgan: Path

    def export_args(self, out: Path) -> list[str]:
        return [
            "--checkpoints",
            str(self.checkpoints),
            "--out",
            str(out),
            "--w2v-bert",
            str(self.w2v_bert),
            "--semantic-codec",
            str(self.semantic_codec),
            "--campplus",
            str(self.campplus),
            "--bigvgan",
            str(self.bigvgan),
            "--int8",
            "--no-progress",
        ]

    def acoustic_sources(self):
        """Where the official acoustic files are, for `export.official_acoustic.load_official_acoustic`."""
        from wyoming_indextts.export.official_acoustic import AcousticSources

        return AcousticSources(
            s2mel_checkpoint=self.checkpoints / "s2mel.pth",
            w2v_stats=self.checkpoints / "wav2vec2bert_stats.pt",
            w2v_bert_dir=self.w2v_bert,
            semantic_codec=self.semantic_codec,
            campplus=self.campplus,
            bigvgan_dir=self.bigvgan,
        )


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> TinyCheckpoints:
    from tests.indextts.tiny_acoustic import build_tiny_acoustic
    from tests.indextts.tiny_gpt import write_tiny_gpt_checkpoints

    torch.set_num_threads(2)
    cache = os.environ.get("WYOMING_INDEXTTS_TINY_CACHE")
    root = Path(cache) if cache else tmp_path_factory.mktemp("indextts-official")
    checkpoints = root / "IndexTTS-2"
    complete = root / "complete"
    if not complete.exists():
        write_tiny_gpt_checkpoints(checkpoints)
        sources = build_tiny_acoustic(checkpoints)
        complete.touch()
    else:
        from tests.indextts.tiny_acoustic import tiny_acoustic_sources

        sources = tiny_acoustic_sources(checkpoints)
    return TinyCheckpoints(
        checkpoints=checkpoints,
        w2v_bert=sources.w2v_bert_dir,
        semantic_codec=sources.semantic_codec,
        campplus=sources.campplus,
        bigvgan=sources.bigvgan_dir,
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_checkpoints: TinyCheckpoints, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported tiny model folder (made by `wyoming-indextts export`'s own code)."""
    from wyoming_indextts.export.cli import main

    exported = os.environ.get("WYOMING_INDEXTTS_TINY_MODEL")
    if exported:
        return Path(exported)
    out = tmp_path_factory.mktemp("indextts-model") / "model"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(tiny_checkpoints.export_args(out))
    assert code == 0, stderr.getvalue()
    return out


def copy_model_dir(src: Path, dst: Path) -> Path:
    """A cheap copy (hard links): replace files, never edit them in place."""
    shutil.copytree(src, dst, copy_function=_link_or_copy)
    return dst


def _link_or_copy(src: str, dst: str) -> None:
    import os

    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def snr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Signal-to-error ratio of `estimate` against `reference` in dB (inf when identical).

    The parity bars use it instead of cosine: cosine >= 0.999 still accepts an error 30 dB
    below the signal, which is what a wrong CFG mix or a dropped input costs on the tiny
    models; float32 error between ONNX Runtime and torch sits far above that (see the bars).
    """
    estimate = np.asarray(estimate, dtype=np.float64).ravel()
    reference = np.asarray(reference, dtype=np.float64).ravel()
    assert estimate.shape == reference.shape, (estimate.shape, reference.shape)
    error = float(np.sum((estimate - reference) ** 2))
    if error == 0.0:
        return float("inf")
    return float(10.0 * np.log10(np.sum(reference**2) / error))


@pytest.fixture(scope="session")
def tiny25_checkpoints(tiny_checkpoints: TinyCheckpoints, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny official IndexTTS-2.5 folder (hf_cache/ holds the tiny 2.0 w2v-BERT, CAMPPlus and
    BigVGAN, which 2.5 uses unchanged)."""
    from tests.indextts.tiny25 import write_tiny25_checkpoints

    cache = os.environ.get("WYOMING_INDEXTTS_TINY_CACHE")
    root = Path(cache) if cache else tmp_path_factory.mktemp("indextts25-official")
    checkpoints = root / "IndexTTS-2.5"
    if not (root / "complete25").exists():
        write_tiny25_checkpoints(checkpoints, tiny_checkpoints.checkpoints)
        (root / "complete25").touch()
    return checkpoints


@pytest.fixture(scope="session")
def tiny25_model_dir(tiny25_checkpoints: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny 2.5 folder exported by `wyoming-indextts export --int8` (no --w2v-bert etc.:
    hf_cache/); the int8 GPT core is the speculative draft."""
    from wyoming_indextts.export.cli import main

    exported = os.environ.get("WYOMING_INDEXTTS_TINY25_MODEL")
    if exported:
        return Path(exported)
    out = tmp_path_factory.mktemp("indextts25-model") / "model"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(["--checkpoints", str(tiny25_checkpoints), "--out", str(out), "--no-progress", "--int8"])
    assert code == 0, stderr.getvalue()
    return out
