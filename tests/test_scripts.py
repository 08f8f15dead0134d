"""The install and start scripts (script/run, script/test, script/torch-cpu, the image's
docker/run) and the systemd unit, run for real in a copy of the repository whose .venv has a
stand-in pip (it records its arguments) and python (it prints its arguments): the scripts' own
logic runs, nothing is downloaded."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "script", checkout / "script")
    shutil.copytree(ROOT / "docker", checkout / "docker")
    shutil.copy(ROOT / "pyproject.toml", checkout)
    bin_dir = checkout / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "pip").write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/../pip.log"\n')
    (bin_dir / "python").write_text('#!/bin/sh\necho "$@"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return checkout


def run(command: list[str | Path], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60, env=env)


def test_script_run_and_script_test_keep_each_others_install_stamp(checkout):
    venv = checkout / ".venv"

    def stamps() -> set[str]:
        return {path.name for path in venv.glob(".installed-*")}

    run([checkout / "script" / "test", "-q"])
    test_stamps = stamps()
    assert len(test_stamps) == 1
    run([checkout / "script" / "run", "--version"])
    assert test_stamps < stamps(), "script/run removed script/test's stamp"
    installs = (venv / "pip.log").read_text().count("install")
    run([checkout / "script" / "test", "-q"])
    run([checkout / "script" / "run", "--version"])
    assert (venv / "pip.log").read_text().count("install") == installs, "a stamp was lost: something reinstalled"
    assert len(stamps()) == 2


def test_torch_comes_from_the_cpu_index_before_the_extras(checkout):
    run([checkout / "script" / "test", "-q"])
    pip_log = (checkout / ".venv" / "pip.log").read_text().splitlines()
    pinned = next(word.strip('",') for word in (ROOT / "pyproject.toml").read_text().split() if word.startswith('"torch=='))
    torch = pip_log.index(f"install --quiet --index-url https://download.pytorch.org/whl/cpu {pinned}")
    assert torch < pip_log.index("install --quiet -e .[test]")


def test_setup_export_installs_cpu_torch_the_extra_and_the_model_code(checkout):
    run([checkout / "script" / "setup-export"])
    pip_log = (checkout / ".venv" / "pip.log").read_text().splitlines()
    assert [line for line in pip_log if "--upgrade pip" not in line] == [
        "install --quiet --index-url https://download.pytorch.org/whl/cpu torch==2.13.0",
        "install --quiet -e .[export]",
        "install --quiet --no-deps indextts2-inference==2.1.1",
        "install --quiet --no-deps indextts25-inference==0.2.0",  # the exporter reads 2.5 folders with it
    ]


def docker_run(checkout: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The image's entry point with its folders moved under tmp_path; the stand-in python prints
    the server's command line."""
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "data"), "MODEL_DIR": str(tmp_path / "model"), "VOICES_DIR": str(tmp_path / "voices")}
    return run([checkout / "docker" / "run", *args], env=env)


def test_the_image_passes_the_voices_folder_when_a_model_is_mounted(checkout, tmp_path):
    data, model, voices = (str(tmp_path / name) for name in ("data", "model", "voices"))
    fresh = docker_run(checkout, tmp_path)
    assert fresh.stdout.split() == ["-m", "wyoming_indextts", "--uri", "tcp://0.0.0.0:10200", "--data-dir", data]
    assert fresh.stderr == ""

    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "grandma.wav").write_bytes(b"RIFF")
    voices_only = docker_run(checkout, tmp_path)
    assert "--voices-dir" not in voices_only.stdout
    assert "no exported model" in voices_only.stderr and "grandma" not in voices_only.stderr

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "manifest.json").write_text("{}")
    both = docker_run(checkout, tmp_path, "--voice", "grandma", "--data-dir", "/elsewhere")
    assert both.stdout.split() == [
        "-m", "wyoming_indextts", "--uri", "tcp://0.0.0.0:10200", "--data-dir", data,
        "--indextts-model-dir", model, "--voices-dir", voices, "--voice", "grandma", "--data-dir", "/elsewhere",
    ]  # the user's flags come last: argparse lets the last one win
    assert both.stderr == ""


def test_the_dockerfile_builds_with_script_run_and_the_context_leaves_the_venv_out():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    steps = [line for line in dockerfile.splitlines() if line and not line.startswith("#") and not line.startswith(" ")]
    assert "RUN script/run --version" in steps
    assert 'ENTRYPOINT ["docker/run"]' in steps
    copied = {source for line in steps if line.startswith("COPY") for source in line.split()[1:-1]}
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[1] == "*"  # everything out, then only what the image copies back in
    assert {entry.removeprefix("!").rstrip("/") for entry in ignore if entry.startswith("!")} == copied
    assert "COPY . " not in dockerfile


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_verifies(tmp_path):
    unit = (ROOT / "config" / "wyoming-indextts.service").read_text().replace("/opt/wyoming-indextts", str(ROOT))
    (tmp_path / "wyoming-indextts.service").write_text(unit)
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "wyoming-indextts.service")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "ExecStart=/opt/wyoming-indextts/script/run --data-dir /var/lib/wyoming-indextts" in (ROOT / "config" / "wyoming-indextts.service").read_text()


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_shell_scripts_pass_shellcheck():
    services = ROOT / "wyoming_indextts_addon" / "rootfs" / "etc" / "s6-overlay" / "s6-rc.d"
    scripts = [*sorted((ROOT / "script").iterdir()), ROOT / "docker" / "run", *sorted(services.glob("*/run")), services / "wyoming-indextts" / "finish"]
    result = subprocess.run(["shellcheck", "--shell=bash", "--severity=warning", *map(str, scripts)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout
