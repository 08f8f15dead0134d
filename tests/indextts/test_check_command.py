"""`wyoming-indextts check` on the tiny model: the table it prints, and its measures."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tests.indextts.conftest import copy_model_dir, voiced_clip, write_clip  # noqa: E402
from wyoming_indextts.check import main  # noqa: E402
from wyoming_indextts.engines.indextts.quality import dtw_mean_distance, mel_distance  # noqa: E402

pytestmark = pytest.mark.slow

ROW = re.compile(r"^\| (?P<path>[^|]+) \| (?P<ref>[-\d.]+) / (?P<ref_min>[-\d.]+) \| (?P<clip>[-\d.]+) \| (?P<mel>[\d.]+) / (?P<mel_max>[\d.]+) \| (?P<s>[\d.]+) \|$")


def run_check(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exit_:
            code = int(exit_.code)
    return code, out.getvalue(), err.getvalue()


def rows(output: str) -> dict[str, dict[str, float]]:
    found = {}
    for line in output.splitlines():
        match = ROW.match(line)
        if match:
            found[match["path"].strip()] = {k: float(v) for k, v in match.groupdict().items() if k != "path"}
    return found


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "me.wav", voiced_clip(3.0, 22050, seed=9), 22050)


def test_greedy_check_prints_every_path_and_exact_paths_measure_zero(tiny_model_dir: Path, clip: Path) -> None:
    # Texts for which greedy decoding on the tiny GPT does not stop at once with this clip.
    code, output, errors = run_check(
        ["--indextts-model-dir", str(tiny_model_dir), "--voice", str(clip), "--greedy", "--text", "Good evening.",
         "--text", "It is raining outside today.", "--fast-diffusion-steps", "2", "--speculative", "3"]
    )  # fmt: skip
    assert code == 0, errors
    table = rows(output)
    assert set(table) == {"fp32 (reference)", "int8 GPT + diffusion", "2 diffusion steps", "speculative k=3"}
    # the reference against itself, and greedy speculative decoding (exact): the same audio
    for exact in ("fp32 (reference)", "speculative k=3"):
        assert table[exact]["ref_min"] == pytest.approx(1.0, abs=1e-4)
        assert table[exact]["mel_max"] == 0.0
    for path in ("int8 GPT + diffusion", "2 diffusion steps"):
        assert -1.0 <= table[path]["ref_min"] <= table[path]["ref"] <= 1.0
        assert table[path]["mel"] > 0.0  # a different render: a distance above zero
    assert all(-1.0 <= row["clip"] <= 1.0 for row in table.values())



def test_check_on_an_indextts25_folder(tiny25_model_dir: Path, clip: Path) -> None:
    """A 2.5 folder (exported with --int8) goes through every path too; greedy speculative
    decoding on 2.5 is exact as on 2.0."""
    code, output, errors = run_check(
        ["--indextts-model-dir", str(tiny25_model_dir), "--voice", str(clip), "--greedy",
         "--text", "hello world! the weather today", "--fast-diffusion-steps", "2", "--speculative", "3"]
    )  # fmt: skip
    assert code == 0, errors
    table = rows(output)
    assert set(table) == {"fp32 (reference)", "int8 GPT + diffusion", "2 diffusion steps", "speculative k=3"}
    assert table["speculative k=3"]["mel_max"] == 0.0
    assert table["int8 GPT + diffusion"]["mel"] > 0.0 and table["2 diffusion steps"]["mel"] > 0.0

def test_sampling_check_shows_the_seed_floor(tiny_model_dir: Path, clip: Path, tmp_path: Path) -> None:
    plain = copy_model_dir(tiny_model_dir, tmp_path / "plain")  # as exported without --int8
    manifest = json.loads((plain / "manifest.json").read_text())
    for graph in ("gpt_int8", "s2mel_estimator_int8"):
        del manifest["graphs"][graph]
        for name in [n for n in manifest["files"] if n.startswith(f"{graph}.onnx")]:
            del manifest["files"][name]
            (plain / name).unlink()
    (plain / "manifest.json").unlink()
    (plain / "manifest.json").write_text(json.dumps(manifest))
    code, output, errors = run_check(
        ["--indextts-model-dir", str(plain), "--voice", str(clip), "--text", "Dinner is ready.", "--fast-diffusion-steps", "2"]
    )
    assert code == 0, errors
    assert set(rows(output)) == {"fp32 (reference)", "fp32, another seed", "2 diffusion steps"}
    assert "int8 and speculative not checked" in errors


@pytest.mark.parametrize(
    "args,message",
    [
        (["--voice", "nowhere.wav"], "is not a file"),
        (["--speculative", "0"], "must be at least 1"),
    ],
)
def test_bad_input_is_one_line(tiny_model_dir: Path, clip: Path, args: list[str], message: str) -> None:
    base = ["--indextts-model-dir", str(tiny_model_dir), "--voice", str(clip)]
    code, _, errors = run_check(base + args)
    assert code == 2 and message in errors and len(errors.strip().splitlines()) == 1


def test_missing_model_is_one_line(tmp_path: Path, clip: Path) -> None:
    code, _, errors = run_check(["--indextts-model-dir", str(tmp_path / "none"), "--voice", str(clip)])
    assert code == 2 and len(errors.strip().splitlines()) == 1


def test_check_is_a_subcommand(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wyoming_indextts", "check", "--indextts-model-dir", str(tmp_path), "--voice", str(tmp_path / "x.wav")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "wyoming-indextts check: error:" in done.stderr


def test_mel_distance_is_zero_for_the_same_audio_and_grows_with_a_change() -> None:
    wav = voiced_clip(1.0, 22050, seed=1)
    assert mel_distance(wav, wav) == 0.0
    slower = np.interp(np.arange(0, len(wav), 0.9), np.arange(len(wav)), wav).astype(np.float32)
    other = voiced_clip(1.0, 22050, seed=2) * 0.3
    assert 0 < mel_distance(wav, slower) < mel_distance(wav, other)


def test_dtw_aligns_a_stretched_sequence() -> None:
    a = np.array([[0.0], [1.0], [2.0], [3.0]])
    stretched = np.array([[0.0], [0.0], [1.0], [2.0], [2.0], [3.0]])
    assert dtw_mean_distance(a, stretched) == 0.0
    assert dtw_mean_distance(np.zeros((4, 2)), np.ones((3, 2))) == pytest.approx(1.0)  # every pair 1 apart
