"""CI fails when a suite it is meant to run skips; the machine-dependent skips it lists do not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_pytest(folder: Path, ci: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder), str(folder)],
        capture_output=True, text=True, timeout=120, env=env, cwd=folder,
    )


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(
        "from tests.skip_guard import SkipGuard\n"
        "def pytest_configure(config):\n"
        "    config.pluginmanager.register(SkipGuard(), 'skip_guard')\n"
    )
    (tmp_path / "test_runs.py").write_text("def test_runs():\n    assert True\n")
    (tmp_path / "test_needs_a_tool.py").write_text(
        "import pytest\npytest.skip('redis-server is not installed', allow_module_level=True)\n"
    )
    return tmp_path


def test_a_skipped_module_fails_the_run_in_ci_and_is_named(suite):
    result = run_pytest(suite, ci="true")
    assert result.returncode == 1, result.stdout
    assert "skips CI does not allow" in result.stdout
    assert "test_needs_a_tool.py: Skipped: redis-server is not installed" in result.stdout


def test_outside_ci_the_skip_is_a_warning(suite):
    result = run_pytest(suite, ci="")
    assert result.returncode == 0, result.stdout
    assert "skipped here, and CI would fail on it" in result.stdout


def test_a_run_without_skips_passes_in_ci(suite):
    (suite / "test_needs_a_tool.py").unlink()
    result = run_pytest(suite, ci="true")
    assert result.returncode == 0, result.stdout
