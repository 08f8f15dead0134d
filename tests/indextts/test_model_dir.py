"""The model folder contract: what the exporter writes, what the runtime refuses and why."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.indextts.conftest import TinyCheckpoints, copy_model_dir
from wyoming_indextts.engines.base import EngineError
from wyoming_indextts.engines.indextts.format import (
    ACOUSTIC_PARAMS_FILE,
    INDEXTTS_2,
    MODEL_FIELD,
    SpeechParams,
)
from wyoming_indextts.engines.indextts.model import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    IndexTTSModel,
    ModelError,
    sha256_file,
)

TINY_CONFIG = Path(__file__).with_name("tiny_config.yaml")


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys\n"
        "import wyoming_indextts.engines.indextts as m\n"
        "from wyoming_indextts.engines.indextts import engine, gpt, model, sampling, voice, text, s2mel, vocoder\n"
        "bad = sorted(n for n in ('torch', 'torchaudio', 'transformers', 'librosa', 'onnx', 'indextts') if n in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"serving imports pulled in: {result.stdout.strip()}"


@pytest.mark.slow
def test_manifest_describes_every_file_and_graph(tiny_model_dir: Path, tiny_checkpoints: TinyCheckpoints) -> None:
    manifest = json.loads((tiny_model_dir / MANIFEST_NAME).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    on_disk = {p.relative_to(tiny_model_dir).as_posix() for p in tiny_model_dir.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk - {MANIFEST_NAME}
    for name, info in manifest["files"].items():
        assert (tiny_model_dir / name).stat().st_mode & 0o777 == 0o644, name
        assert info["sha256"] == sha256_file(tiny_model_dir / name)
        assert info["size"] == (tiny_model_dir / name).stat().st_size
    assert {
        "gpt",
        "gpt_speaker_conditioning",
        "gpt_emotion_conditioning",
        "w2v_bert",
        "semantic_codec",
        "campplus",
        "prompt_regulator",
        "s2mel_front",
        "s2mel_estimator",
        "bigvgan",
    } <= set(manifest["graphs"])
    for graph in manifest["graphs"].values():
        assert graph["file"] in manifest["files"]
        assert graph["inputs"] and graph["outputs"]
        assert all({"name", "dtype", "shape"} <= set(io) for io in graph["inputs"] + graph["outputs"])
    sources = manifest["source"]["checkpoints"]
    assert sources["gpt.pth"] == sha256_file(tiny_checkpoints.checkpoints / "gpt.pth")
    assert sources["config.yaml"] == sha256_file(tiny_checkpoints.checkpoints / "config.yaml")
    assert "bigvgan_generator.pt" in sources["bigvgan"]
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["gpt"]["stop_mel_token"] == 8193
    assert config["emo_num"] == [3, 17, 2, 8, 4, 5, 10, 24]
    assert config["speaks"] is True
    assert np.load(tiny_model_dir / config["emo_matrix"]).shape == (73, 1280)
    assert (tiny_model_dir / "bpe.model").read_bytes() == (tiny_checkpoints.checkpoints / "bpe.model").read_bytes()


@pytest.mark.slow
def test_open_verifies_and_injected_sessions_are_used(tiny_model_dir: Path) -> None:
    sentinel = object()
    model = IndexTTSModel.open(tiny_model_dir, sessions={"gpt": sentinel})
    assert model.session("gpt") is sentinel
    assert model.created == []
    assert len(model.fingerprint) == 64
    session = model.session("bigvgan")
    assert [i.name for i in session.get_inputs()] == ["mel"]
    assert model.created == ["bigvgan"]
    model.release("bigvgan")
    assert not model.is_loaded("bigvgan")
    with pytest.raises(ModelError, match="no graph named 'nope'"):
        model.session("nope")


@pytest.mark.slow
def test_missing_file_is_a_startup_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = copy_model_dir(tiny_model_dir, tmp_path / "model")
    (broken / "s2mel_front.onnx").unlink()
    with pytest.raises(ModelError, match=r"s2mel_front\.onnx: missing.*wyoming-indextts export"):
        IndexTTSModel.open(broken)


@pytest.mark.slow
def test_changed_file_is_a_startup_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = copy_model_dir(tiny_model_dir, tmp_path / "model")
    target = broken / "emo_matrix.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.unlink()  # a hard link: replace the file, never edit the shared inode
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"emo_matrix\.npy: sha256 does not match"):
        IndexTTSModel.open(broken)
    IndexTTSModel.open(broken, verify=False)  # size still matches: only hashing notices
    target.unlink()
    target.write_bytes(bytes(data[:-4]))
    with pytest.raises(ModelError, match=r"emo_matrix\.npy: size"):
        IndexTTSModel.open(broken, verify=False)


@pytest.mark.slow
def test_manifest_names_its_model_and_runtime_reads_its_numbers(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The folder says which model it holds (a folder from before the field holds IndexTTS-2;
    an unknown model is refused by name), and the runtime takes the sample rate, hop and mel
    frames per code from acoustic.json rather than from constants of its own."""
    manifest = json.loads((tiny_model_dir / MANIFEST_NAME).read_text())
    assert manifest[MODEL_FIELD] == INDEXTTS_2
    model = IndexTTSModel.open(tiny_model_dir, verify=False)
    assert model.manifest.model == INDEXTTS_2
    assert model.speech == SpeechParams(sample_rate=22050, hop_length=256, mel_frames_per_code=1.72)

    older = copy_model_dir(tiny_model_dir, tmp_path / "model")
    manifest_path = older / MANIFEST_NAME
    manifest_path.unlink()
    manifest_path.write_text(json.dumps({k: v for k, v in manifest.items() if k != MODEL_FIELD}))
    assert IndexTTSModel.open(older, verify=False).manifest.model == INDEXTTS_2
    manifest_path.unlink()
    manifest_path.write_text(json.dumps({**manifest, MODEL_FIELD: "indextts-9"}))
    with pytest.raises(ModelError, match=r"holds model 'indextts-9', which this version .* does not know"):
        IndexTTSModel.open(older, verify=False)
    manifest_path.unlink()
    manifest_path.write_text(json.dumps(manifest))

    # Another model of the family (same file sizes: only the hash check would notice).
    params_path = older / ACOUSTIC_PARAMS_FILE
    params = params_path.read_text()
    params_path.unlink()
    params_path.write_text(params.replace('"mel_frames_per_code": 1.72', '"mel_frames_per_code": 0.86'))
    other = IndexTTSModel.open(older, verify=False)
    assert other.speech.mel_frames_per_code == 0.86
    from wyoming_indextts.engines.indextts.s2mel import S2Mel

    assert S2Mel(other.session, mel_frames_per_code=other.speech.mel_frames_per_code).condition(
        np.zeros((1, 10, 1280), np.float32), np.zeros((1, 10), np.int64)
    ).shape[1] == 8  # int(10 * 0.86); IndexTTS-2's 1.72 gives 17


@pytest.mark.slow
def test_incompatible_or_broken_manifest(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = copy_model_dir(tiny_model_dir, tmp_path / "model")
    manifest_path = broken / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest_path.unlink()
    manifest_path.write_text(json.dumps({**manifest, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ModelError, match=rf"format version {FORMAT_VERSION + 1} is not supported"):
        IndexTTSModel.open(broken)
    manifest_path.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        IndexTTSModel.open(broken)
    manifest_path.unlink()
    with pytest.raises(ModelError, match=r"manifest\.json: missing"):
        IndexTTSModel.open(broken)
    with pytest.raises(ModelError, match="model folder not found"):
        IndexTTSModel.open(tmp_path / "nowhere")
    assert issubclass(ModelError, EngineError)


# -- exporter command line: input checks (no export work is done) ------------------------------


def fake_checkpoints(root: Path) -> Path:
    folder = root / "IndexTTS-2"
    folder.mkdir()
    shutil.copyfile(TINY_CONFIG, folder / "config.yaml")
    for name in ("gpt.pth", "s2mel.pth", "bpe.model", "wav2vec2bert_stats.pt", "feat1.pt", "feat2.pt"):
        (folder / name).write_bytes(b"x")
    return folder


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from wyoming_indextts.export.cli import main

    code = main(args)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("missing", ["gpt.pth", "feat2.pt", "s2mel.pth", "wav2vec2bert_stats.pt", "config.yaml"])
def test_export_names_a_missing_checkpoint_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: str) -> None:
    pytest.importorskip("omegaconf")
    folder = fake_checkpoints(tmp_path)
    extras = tmp_path / "extras"
    for name in ("w2v", "bigvgan"):
        (extras / name).mkdir(parents=True)
        (extras / name / "config.json").write_text("{}")
    (extras / "bigvgan" / "bigvgan_generator.pt").write_bytes(b"x")
    (extras / "codec.safetensors").write_bytes(b"x")
    (extras / "campplus.bin").write_bytes(b"x")
    (folder / missing).unlink()
    code, err = run_cli(
        [
            "--checkpoints", str(folder), "--out", str(tmp_path / "out"),
            "--w2v-bert", str(extras / "w2v"), "--semantic-codec", str(extras / "codec.safetensors"),
            "--campplus", str(extras / "campplus.bin"), "--bigvgan", str(extras / "bigvgan"),
        ],
        capsys,
    )  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert str(folder / missing) in err
    assert not (tmp_path / "out").exists()


def test_export_names_missing_external_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("omegaconf")
    folder = fake_checkpoints(tmp_path)
    code, err = run_cli(["--checkpoints", str(folder), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "--w2v-bert" in err and err.count("\n") == 1
    code, err = run_cli(
        ["--checkpoints", str(folder), "--out", str(tmp_path / "out"), "--w2v-bert", str(tmp_path / "nope"),
         "--semantic-codec", "x", "--campplus", "x", "--bigvgan", "x"],
        capsys,
    )  # fmt: skip
    assert code == 2 and str(tmp_path / "nope") in err


def test_export_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("omegaconf")
    folder = fake_checkpoints(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, err = run_cli(["--checkpoints", str(folder), "--out", str(out), "--gpt-only"], capsys)
    assert code == 2 and "--force" in err
    assert (out / "keep.txt").read_text() == "mine"


def test_export_reports_a_broken_checkpoint_and_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    folder = fake_checkpoints(tmp_path)  # gpt.pth is one byte: not a checkpoint
    code, err = run_cli(["--checkpoints", str(folder), "--out", str(tmp_path / "out"), "--gpt-only", "--no-progress"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"{folder / 'gpt.pth'}: cannot load it" in err
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.slow
def test_large_graphs_keep_weights_beside_them(tiny_checkpoints: TinyCheckpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The published GPT core is ~1.9 GB: it is saved with external data. Same path, tiny size."""
    import onnxruntime as ort
    from omegaconf import OmegaConf

    from wyoming_indextts.export import gpt as gpt_export
    from wyoming_indextts.export.manifest import write_manifest

    monkeypatch.setattr(gpt_export, "EXTERNAL_DATA_THRESHOLD", 1_000_000)
    cfg = OmegaConf.load(tiny_checkpoints.checkpoints / "config.yaml")
    model = gpt_export.load_unified_voice(cfg.gpt, tiny_checkpoints.checkpoints / "gpt.pth")
    out = tmp_path / "model"
    path = gpt_export.export_core(model, out)
    assert (out / "gpt.onnx.data").stat().st_size > 10 * (out / "gpt.onnx").stat().st_size
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    layers, heads = model.gpt.config.n_layer, model.gpt.config.n_head
    feed = {
        "inputs_embeds": np.zeros((1, 3, 1280), dtype=np.float32),
        "attention_mask": np.ones((1, 3), dtype=np.int64),
        "logit_positions": np.arange(3, dtype=np.int64),
    }
    for i in range(layers):
        for kind in ("key", "value"):
            feed[f"past_{kind}_{i}"] = np.zeros((1, heads, 0, 1280 // heads), dtype=np.float32)
    hidden, logits, *_ = session.run(None, feed)
    assert hidden.shape == (1, 3, 1280) and logits.shape == (1, 8194)
    manifest = json.loads(write_manifest(out, {"gpt": "gpt.onnx"}, {}).read_text())
    assert set(manifest["files"]) == {"gpt.onnx", "gpt.onnx.data"}
