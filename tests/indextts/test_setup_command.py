"""`wyoming-indextts setup` against a stand-in Hugging Face Hub on loopback (tests/hub_standin.py)
that serves the tiny checkpoints with the real hub's URL layout and headers; the real
huggingface_hub client talks to it through `--hf-endpoint`."""

from __future__ import annotations

import contextlib
import io
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("huggingface_hub")

from tests.hub_standin import COMMIT, HubStandIn  # noqa: E402
from tests.indextts.conftest import TinyCheckpoints, voiced_clip, write_clip  # noqa: E402
from wyoming_indextts.export.setup_cli import main as setup_main  # noqa: E402
from wyoming_indextts.export.sources import MODELS  # noqa: E402

SOURCES = {source.key: source for source in MODELS["indextts2"].sources}
UNNEEDED = "qwen0.6bemo4-merge/model.safetensors"
"""In the real IndexTTS-2 repository too; the ONNX runtime never reads it, so setup must not fetch it."""


def serve_tiny(hub: HubStandIn, tiny: TinyCheckpoints) -> None:
    """The tiny files under the official repository names and paths."""
    for name in SOURCES["IndexTTS-2"].files:
        hub.add_file("IndexTeam/IndexTTS-2", name, (tiny.checkpoints / name).read_bytes())
    hub.add_file("IndexTeam/IndexTTS-2", UNNEEDED, b"\0" * 4096)
    hub.add_file("IndexTeam/IndexTTS-2", "README.md", b"# IndexTTS-2\n")
    hub.add_folder("facebook/w2v-bert-2.0", tiny.w2v_bert)
    hub.add_file("amphion/MaskGCT", "semantic_codec/model.safetensors", tiny.semantic_codec.read_bytes())
    hub.add_file("funasr/campplus", "campplus_cn_common.bin", tiny.campplus.read_bytes())
    hub.add_folder("nvidia/bigvgan_v2_22khz_80band_256x", tiny.bigvgan)


def run_setup(args: list[str]) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = setup_main([*args, "--no-progress"])
    return code, stderr.getvalue()


@pytest.mark.slow
def test_setup_resumes_an_interrupted_download_verifies_and_exports(tiny_checkpoints: TinyCheckpoints, tmp_path: Path) -> None:
    from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions

    with HubStandIn() as hub:
        serve_tiny(hub, tiny_checkpoints)
        gpt = hub.cdn_path("IndexTeam/IndexTTS-2", "gpt.pth")
        gpt_size = len(hub.repos["IndexTeam/IndexTTS-2"]["gpt.pth"].content)
        args = ["--dir", str(tmp_path / "models"), "--hf-endpoint", hub.endpoint]

        # Run 1: gpt.pth is cut half way, and the network stays down for it (its in-run retry gets 503).
        hub.cut_once(gpt)
        hub.fail(gpt, 503)
        code, err = run_setup(args)
        assert code == 2
        assert err.strip().splitlines()[-1] == (
            f"error: IndexTeam/IndexTTS-2/gpt.pth: {hub.endpoint} answered HTTP 503; run setup again later, "
            "or check the network, or use a mirror with --hf-endpoint / HF_ENDPOINT"
        )
        folder = tmp_path / "models" / "downloads" / "indextts2" / "IndexTTS-2"
        assert not (folder / "gpt.pth").exists()
        (partial,) = folder.glob(".gpt.pth.*.part")
        kept = partial.stat().st_size  # what huggingface_hub wrote before the cut (whole chunks)
        assert 0 < kept < gpt_size

        # Run 2: the rest of gpt.pth comes with a Range request; campplus is cut once more and
        # huggingface_hub's in-run retry resumes it the same way.
        hub.heal(gpt)
        campplus = hub.cdn_path("funasr/campplus", "campplus_cn_common.bin")
        hub.cut_once(campplus)
        code, err = run_setup(args)
        assert code == 0, err

    assert hub.ranges(gpt) == [f"bytes={kept}-", f"bytes={kept}-"]  # run 1's retry (503), run 2 (206)
    assert ("GET", gpt, f"bytes={kept}-", 206) in hub.requests
    (campplus_range,) = hub.ranges(campplus)
    assert int(campplus_range.removeprefix("bytes=").rstrip("-")) > 0
    assert ("GET", campplus, campplus_range, 206) in hub.requests
    assert (folder / "gpt.pth").read_bytes() == (tiny_checkpoints.checkpoints / "gpt.pth").read_bytes()
    requested = {path for _, path, _, _ in hub.requests}
    assert not any(UNNEEDED in path or "README.md" in path for path in requested)
    # Every listed file was fetched at the commit the model info named, so all come from one version.
    for source in SOURCES.values():
        assert f"/api/models/{source.repo_id}/revision/main" in requested
        for name in source.files:
            assert f"/{source.repo_id}/resolve/{COMMIT}/{name}" in requested

    model_dir = tmp_path / "models" / "indextts2"
    voices = tmp_path / "voices"
    voices.mkdir()
    write_clip(voices / "lena.wav", voiced_clip(3.0, 22050, seed=4), 22050)
    options = IndexTTSOptions(do_sample=False, seed=21, diffusion_steps=2, max_mel_tokens=40)
    engine = IndexTTSEngine.load(model_dir, voices, tmp_path / "conditioning", options)
    try:
        audio = b"".join(engine.synthesize("Dinner is ready.", engine.voices()[0]))
    finally:
        engine.close()
    assert np.frombuffer(audio, dtype="<i2").std() > 30  # audio, not silence (the tiny model speaks quietly)

    # Run 3: everything is there; nothing is downloaded or exported again.
    with HubStandIn() as again:
        serve_tiny(again, tiny_checkpoints)
        code, err = run_setup(["--dir", str(tmp_path / "models"), "--hf-endpoint", again.endpoint])
    assert code == 0, err
    assert "already exported" in err
    assert not any(method == "GET" and "/cdn/" in path for method, path, _, _ in again.requests)


def small_hub(hub: HubStandIn) -> None:
    """Every listed file, a few bytes each: enough for the checks that fail before an export."""
    for source in SOURCES.values():
        for name in source.files:
            hub.add_file(source.repo_id, name, f"{source.key}/{name}\n".encode() * 8)


def test_setup_errors_are_one_line(tmp_path: Path) -> None:
    with HubStandIn() as hub:
        small_hub(hub)
        args = ["--dir", str(tmp_path), "--hf-endpoint", hub.endpoint, "--download-only"]

        # Checksum mismatch: a regular (non-LFS) file is checked against its git blob id ...
        config = f"/IndexTeam/IndexTTS-2/resolve/{COMMIT}/config.yaml"
        hub.corrupt(config)
        code, err = run_setup(args)
        assert code == 2
        assert err.strip().splitlines()[-1].startswith("error: IndexTeam/IndexTTS-2/config.yaml: checksum mismatch (git blob id ")
        hub.corrupt(config, on=False)
        # ... an LFS file against its sha256; nothing takes the file's name.
        hub.corrupt(hub.cdn_path("funasr/campplus", "campplus_cn_common.bin"))
        code, err = run_setup(args)
        assert code == 2
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: funasr/campplus/campplus_cn_common.bin: checksum mismatch (sha256 ")
        assert last.endswith("the download was deleted, run setup again")
        target = tmp_path / "downloads" / "indextts2" / "campplus"
        assert not (target / "campplus_cn_common.bin").exists()
        assert not list(target.glob("*.part"))

        # 404: a repository the hub does not have.
        del hub.repos["amphion/MaskGCT"]
        code, err = run_setup(args)
        assert (code, err.strip().splitlines()[-1]) == (2, f"error: amphion/MaskGCT: repository not found on {hub.endpoint} (404)")

        # Disk full: the hub lists a file larger than the free space; refused before any transfer.
        hub.add_file("amphion/MaskGCT", "semantic_codec/model.safetensors", b"x")
        hub.listed_size["amphion/MaskGCT", "semantic_codec/model.safetensors"] = 10**18
        transfers = [r for r in hub.requests if "/cdn/" in r[1]]
        code, err = run_setup(args)
        assert code == 2
        assert re.fullmatch(r"error: not enough disk space in \S+: 1000000000\.\d GB needed, [\d.]+ [kMG]?B free", err.strip().splitlines()[-1])
        assert [r for r in hub.requests if "/cdn/" in r[1]] == transfers

    # No network: nothing listens on the port. Through the real command line (`setup` dispatch).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    done = subprocess.run(
        [sys.executable, "-m", "wyoming_indextts", "setup", "--dir", str(tmp_path), "--hf-endpoint", endpoint, "--download-only"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2
    assert last.startswith(f"error: IndexTeam/IndexTTS-2: cannot reach {endpoint} (")
    assert last.endswith("check the network, or use a mirror with --hf-endpoint / HF_ENDPOINT")
