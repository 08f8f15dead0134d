"""The pre-render list edited on the web page in a real headless Chromium (Debian's, driven by
Playwright): an announcement added for a voice is kept beside the cache, rendered in the
background (the page follows its progress) and taken off again; changes need the token."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from wyoming_indextts.http import HttpSettings
from wyoming_indextts.prerender import EditedLists

from tests.conftest import make_cache
from tests.http.conftest import live_server

CHROMIUM = "/usr/bin/chromium"
TOKEN = "list-token"
ANNOUNCEMENT = "The washing machine is done."
JOE = "en_US-joe-medium"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (script/test installs it with apt-get as root)", allow_module_level=True)
expect = sync_api.expect


def test_page_edits_the_prerender_list(piper, tmp_path):
    lists = tmp_path / "prerender"
    settings = HttpSettings(token=TOKEN)
    with live_server({"piper": piper}, cache=make_cache(tmp_path), settings=settings, prerender_dir=lists) as live:
        refused = httpx.post(f"{live.base_url}/v1/prerender", json={"voice": JOE, "text": ANNOUNCEMENT})
        assert refused.status_code == 401 and EditedLists(lists).texts() == {}
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(live.base_url + "/")
            page.fill("#token", TOKEN)
            page.dispatch_event("#token", "change")
            expect(page.locator("#prerender-status")).to_have_text("Nothing to render.")
            page.fill("#prerender-text", ANNOUNCEMENT)
            page.select_option("#prerender-voice", JOE)
            page.click("#prerender-form button[type=submit]")
            expect(page.locator("#prerender-list li")).to_have_text(f"{JOE}: {ANNOUNCEMENT} Remove")
            expect(page.locator("#prerender-status")).to_have_text("1 of 1 sentences done, 0 failed", timeout=60_000)
            assert EditedLists(lists).texts() == {JOE: [ANNOUNCEMENT]}  # kept for the next start
            metrics = httpx.get(f"{live.base_url}/metrics").text
            assert 'wyoming_indextts_prerender_sentences{result="rendered"} 1.0' in metrics

            page.click("#prerender-list li button")
            expect(page.locator("#prerender-list li")).to_have_count(0)
            expect(page.locator("#prerender-status")).to_have_text("Nothing to render.")
            browser.close()
    assert EditedLists(lists).texts() == {} and errors == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"voice": "nobody", "text": ANNOUNCEMENT}, 404, "no voice named 'nobody'"),
        ({"voice": JOE, "text": "# not a comment"}, 400, "'#'"),
        ({"voice": JOE, "text": "?! 🙂"}, 400, "Nothing to say"),
    ],
)
def test_bad_prerender_edits_get_json_errors(piper, tmp_path, body, status, words):
    with live_server({"piper": piper}, settings=HttpSettings(token=TOKEN), prerender_dir=tmp_path) as live:
        response = httpx.post(f"{live.base_url}/v1/prerender", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == status and words in response.json()["error"]["message"], response.text
    assert EditedLists(tmp_path).texts() == {}
