"""The HTTP API's token on the web page behind Home Assistant's ingress, in a real headless
Chromium (Debian's, driven by Playwright): shown once to a trusted peer, replaced on request,
the file the add-on keeps it in rewritten; without a token file the section stays hidden."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from wyoming_indextts.http import HttpSettings

from tests.http.conftest import live_server

CHROMIUM = "/usr/bin/chromium"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (script/test installs it with apt-get as root)", allow_module_level=True)
expect = sync_api.expect


def open_page(playwright, url: str, errors: list[str]):
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    )
    page = browser.new_page()
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("dialog", lambda dialog: dialog.accept())  # "Make a new token?"
    page.goto(url)
    return browser, page


def test_the_page_shows_the_token_once_and_replaces_it(piper, tmp_path):
    token_file = tmp_path / "http-token"
    token_file.write_text("first-token")
    # The browser connects from 127.0.0.1, which stands for the ingress proxy here.
    settings = HttpSettings(token="first-token", token_file=token_file, trusted_peers=frozenset({"127.0.0.1"}))
    errors: list[str] = []
    with live_server({"piper": piper}, settings=settings) as live, sync_api.sync_playwright() as playwright:
        browser, page = open_page(playwright, live.base_url + "/", errors)
        expect(page.locator("#token-admin")).to_be_visible()
        page.click("#token-reveal")
        expect(page.locator("#token-value")).to_have_text("first-token")
        expect(page.locator("#token-reveal")).to_be_disabled()
        page.reload()  # shown once: after a reload only a new one can be had
        expect(page.locator("#token-reveal")).to_be_disabled()
        page.click("#token-rotate")
        expect(page.locator("#token-value")).to_have_text(re.compile(r"^[0-9a-f]{48}$"))
        assert page.locator("#token-value").text_content() == token_file.read_text()
        browser.close()
    assert errors == []


def test_without_a_token_file_the_page_has_no_token_section(piper):
    errors: list[str] = []
    settings = HttpSettings(token="t", trusted_peers=frozenset({"127.0.0.1"}))
    with live_server({"piper": piper}, settings=settings) as live, sync_api.sync_playwright() as playwright:
        browser, page = open_page(playwright, live.base_url + "/", errors)
        expect(page.locator("#voices tr")).not_to_have_count(0)  # the page has loaded
        expect(page.locator("#token-admin")).to_be_hidden()
        browser.close()
    assert errors == []
