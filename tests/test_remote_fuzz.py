"""The remote engine fuzzed in CI: a front server (the service as the CLI builds it, the bundled
voice as fallback) whose remote is a hostile stand-in answering every sentence with fuzzed
events. No reply may hang or stay silent, nothing may crash, and between batches describe is
answered within 1 s and the bundled voice speaks. The long run is benchmarks/remote_fuzz.py."""

from __future__ import annotations

import logging
import random

from wyoming_indextts.engines.remote import RemoteEngine, RemoteSettings
from wyoming_indextts.synthesizer import ChainSettings

from .conftest import make_cache, running_server
from .hostile_remote import HostileAnswers, StandIn
from .remote_fuzz import REMOTE_VOICE, TEXTS, fuzz_remote

# Short waits, so the few hundred events take seconds; the stand-in's stalls (up to 1.5 s) pass
# the remote's 1 s read timeout or the front's 1 s deadline about half the time.
SETTINGS = RemoteSettings(connect_timeout=1.0, startup_timeout=5.0, first_audio_timeout=2.0, read_timeout=1.0, refresh=1.0, retry=0.05)
# The breaker would skip the remote after three failures: here every sentence must reach it.
CHAIN = ChainSettings(deadlines={"remote": 1.0}, sentence_cap=30.0, breaker_failures=10**9)


async def test_a_fuzzed_remote_never_silences_the_front(piper, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    stand_in = StandIn(voice=REMOTE_VOICE, answer=HostileAnswers(random.Random(21)), new_version_each_describe=True)
    remote = RemoteEngine(stand_in.uri, settings=SETTINGS)
    try:
        assert remote.start()
        engines = {"remote": remote, "piper": piper}
        async with running_server(engines, cache=make_cache(tmp_path), chain=CHAIN) as front:
            report = await fuzz_remote(front.port, stand_in, events=600, batch=200, texts=TEXTS[::25])
    finally:
        remote.close()
        stand_in.close()
    assert report.events >= 600 and report.sentences > 50
    assert report.health_checks == 3 and report.failed_health_checks == []
    assert report.hangs == [] and report.silent == []
    assert report.describe_failures == [] and len(report.describe_seconds) > 10
    crashes = [r for r in caplog.records if r.exc_info or r.levelno >= logging.CRITICAL]
    assert crashes == [], [r.getMessage() for r in crashes]
    # The faults were the remote's, told as such, and the bundled voice spoke instead.
    told = caplog.text
    assert "remote failed" in told and "Spoken by piper voice" in told
    for fault in ("sample rate", "are usable", "not JSON", "closed the connection"):
        assert fault in told, fault
