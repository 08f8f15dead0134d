"""Who spoke, told truly: a cloned voice too slow to answer live is replaced by the bundled
voice, and the page (real headless Chromium), `X-Voice` and /metrics say so, and say the
sentence is queued; once the cloned voice has rendered it, the same request is answered in the
cloned voice from the cache, and the page's line "last 24 h: N % of sentences in X's voice"
counts both."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from wyoming_indextts.service import open_ledger
from wyoming_indextts.synthesizer import ChainSettings

from tests.conftest import CountingEngine, make_cache
from tests.http.conftest import live_server

CHROMIUM = "/usr/bin/chromium"
CLONE = "clone-en"
JOE = "en_US-joe-medium"
TEXT = "The washing machine is done."
# The clone misses a 1 s deadline while held; no late render is kept, so only the queue has it.
CHAIN = ChainSettings(default_deadline=1.0, late_renders=0)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (script/test installs it with apt-get as root)", allow_module_level=True)
expect = sync_api.expect


def test_headers_and_page_name_the_voice_that_spoke(piper, tmp_path):
    clone = CountingEngine(piper, name="indextts", voice_name=CLONE, languages=("en",))
    clone.hang.set()
    with live_server({"indextts": clone, "piper": piper}, CLONE, cache=make_cache(tmp_path), chain=CHAIN) as live:
        open_ledger(live.harness.service, tmp_path / "ledger.sqlite3", 100)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(live.base_url + "/")
            expect(page.locator("#speak-voice option", has_text=CLONE)).to_have_count(1)
            page.fill("#speak-text", TEXT)
            page.select_option("#speak-voice", CLONE)
            page.click("#speak-form button[type=submit]")
            status = page.locator("#speak-status")
            expect(status).to_contain_text(
                f"spoken by the fallback voice {JOE}, not {CLONE} (too slow to render live); "
                f"the sentence is queued to render in {CLONE}'s voice",
                timeout=60_000,
            )
            expect(page.locator("#status")).to_contain_text(f"last 24 h: 0 % of sentences in {CLONE}'s voice (last 7 d: 0 %)")
            expect(page.locator("#status")).to_contain_text(f"1 sentence(s) waiting for their voice, most asked first (next: “{TEXT}” in {CLONE}, asked 1×)")

            # The clone renders the queued sentence (as the queue's renderer would), then speaks it from the cache.
            clone.hang.clear()
            voice = live.harness.catalogue.find(CLONE)
            assert live.run(live.harness.synthesizer.render_for_cache(TEXT, voice)) == "rendered"
            page.click("#speak-form button[type=submit]")
            expect(status).to_contain_text(f"spoken in {CLONE}'s voice", timeout=60_000)
            expect(page.locator("#status")).to_contain_text(f"last 24 h: 50 % of sentences in {CLONE}'s voice")
            browser.close()
        assert errors == []

        # The same over the API, for any client.
        answer = httpx.post(f"{live.base_url}/tts", json={"text": TEXT, "voice": CLONE}, timeout=60)
        assert answer.headers["X-Voice"] == quote(CLONE) and answer.headers["X-Voice-Route"] == "cache"
        metrics = httpx.get(f"{live.base_url}/metrics").text
        assert f'wyoming_indextts_heard_sentences_total{{engine="piper",route="fallback",voice="{CLONE}"}} 1.0' in metrics
        assert f'wyoming_indextts_heard_sentences_total{{engine="indextts",route="cache",voice="{CLONE}"}} 2.0' in metrics
        assert f'wyoming_indextts_heard_replies_total{{engine="indextts",route="cache",voice="{CLONE}"}} 2.0' in metrics
