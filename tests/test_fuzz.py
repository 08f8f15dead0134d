"""The protocol fuzzer in CI: 20,000 hostile or broken events against the real server, with a
health check (describe within 1 s, a fresh sentence spoken) after every 2,000."""

from __future__ import annotations

import logging

from .conftest import make_cache, running_server
from .wyoming_fuzz import fuzz


async def test_20000_fuzzed_events_never_silence_the_server(piper, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with running_server({"piper": piper}, cache=make_cache(tmp_path)) as harness:
        report = await fuzz(harness.port, events=20_000, seed=8)
        assert report.events == 20_000 and report.connections > 500
        assert report.health_checks == 10
        assert report.failed_health_checks == []
    crashes = [r for r in caplog.records if r.exc_info or r.levelno >= logging.CRITICAL]
    assert crashes == [], [r.getMessage() for r in crashes]
