"""A suite must not pass in CI by skipping what CI is meant to run.

Every skip (a skipped test, or a module skipped while it was collected) is matched against
ALLOWED_SKIPS: skips that depend on the machine, not on a missing install. With CI set, any
other skip fails the run after pytest's own summary; elsewhere it is listed as a warning, since
a developer without chromium or redis-server may still want the rest of the suite.
"""

from __future__ import annotations

import os

import pytest

ALLOWED_SKIPS: dict[str, str] = {
    # test id prefix -> why this skip is the machine's answer, not a gap in CI
    "tests/test_providers.py::test_a_missing_provider_falls_back_to_the_cpu_and_says_what_to_install": (
        "an onnxruntime build that has CUDA or OpenVINO cannot test the fallback to the CPU"
    ),
    "tests/test_providers.py::test_the_server_reports_its_provider_and_speaks_on_the_cpu_fallback": (
        "an onnxruntime build that has OpenVINO cannot test the fallback to the CPU"
    ),
    "tests/test_discovery.py::test_the_announcement_browsed_on_this_machine_leads_to_the_server": (
        "no interface routes multicast on this machine; the address choice itself is tested without one"
    ),
}


def _allowed(nodeid: str) -> bool:
    return any(nodeid.startswith(prefix) for prefix in ALLOWED_SKIPS)


class SkipGuard:
    def __init__(self) -> None:
        self.forbidden: list[tuple[str, str]] = []

    def note(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if report.skipped and not _allowed(report.nodeid):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.forbidden.append((report.nodeid, reason))

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.note(report)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when in ("setup", "call"):
            self.note(report)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter) -> None:  # noqa: ANN001 - pytest's TerminalReporter
        if not self.forbidden:
            return
        title = "skips CI does not allow" if enforced() else "skipped here, and CI would fail on it"
        terminalreporter.section(title, sep="=", red=enforced(), yellow=not enforced())
        for nodeid, reason in self.forbidden:
            terminalreporter.line(f"{nodeid}: {reason}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.forbidden and enforced() and exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def enforced() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
