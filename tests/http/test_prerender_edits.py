"""Pre-render lists edited over the HTTP API (issue 21, item 9): an edit renders only what is
new (nothing already rendered is looked at again, a render under way is not thrown away), the
lists have a size limit with a clear error, and an entry taken off is no longer pinned."""

from __future__ import annotations

import time

import httpx

from tests.conftest import CountingEngine, make_cache
from tests.http.conftest import live_server
from tests.test_cli import run_cli
from wyoming_indextts.http import HttpSettings
from wyoming_indextts.prerender import EditedLists

TOKEN = "list-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ANNOUNCEMENTS = [f"Announcement number {n} is ready." for n in range(6)]


def clone(piper) -> CountingEngine:
    # Slow on purpose, so that edits arrive while a sentence renders.
    return CountingEngine(piper, name="indextts", voice_name="grandma", languages=("en",), delay=0.5)


def wait_until_done(base_url: str, total: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        progress = httpx.get(f"{base_url}/v1/prerender", headers=AUTH).json()["progress"]
        if progress["total"] == total and progress["done"] == total:
            return progress
        assert time.monotonic() < deadline, progress
        time.sleep(0.1)


def add(base_url: str, text: str) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/prerender", json={"voice": "grandma", "text": text}, headers=AUTH, timeout=30)


def test_edits_render_only_what_is_new(piper, tmp_path):
    engine = clone(piper)
    cache = make_cache(tmp_path)
    with live_server({"indextts": engine, "piper": piper}, "grandma", cache=cache, settings=HttpSettings(token=TOKEN), prerender_dir=tmp_path / "lists") as live:
        for text in ANNOUNCEMENTS[:5]:
            assert add(live.base_url, text).status_code == 200  # each while another renders
        wait_until_done(live.base_url, 5)
        # Every sentence rendered once: no edit cancelled a render under way to start over.
        assert sorted(engine.calls) == sorted(ANNOUNCEMENTS[:5])
        looked_up = (cache.stats.memory_hits, cache.stats.disk_hits, cache.stats.misses)
        assert add(live.base_url, ANNOUNCEMENTS[5]).status_code == 200
        progress = wait_until_done(live.base_url, 6)
    assert engine.calls[5:] == [ANNOUNCEMENTS[5]] and progress["failed"] == 0
    # Only the new sentence was looked up in the cache (a miss); the five done were not walked again.
    assert (cache.stats.memory_hits, cache.stats.disk_hits, cache.stats.misses) == (looked_up[0], looked_up[1], looked_up[2] + 1)


def test_the_lists_have_a_size_limit_with_a_clear_error(piper, tmp_path):
    with live_server({"piper": piper}, settings=HttpSettings(token=TOKEN), prerender_dir=tmp_path) as live:
        live.prerenderer.max_texts = 3
        joe = {"voice": "en_US-joe-medium"}
        for text in ANNOUNCEMENTS[:3]:
            assert httpx.post(f"{live.base_url}/v1/prerender", json={**joe, "text": text}, headers=AUTH).status_code == 200
        refused = httpx.post(f"{live.base_url}/v1/prerender", json={**joe, "text": ANNOUNCEMENTS[3]}, headers=AUTH)
        again = httpx.post(f"{live.base_url}/v1/prerender", json={**joe, "text": ANNOUNCEMENTS[0]}, headers=AUTH)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "prerender_full" and "3 texts" in error["message"] and "--prerender-max-texts" in error["message"]
    assert again.status_code == 200  # already listed: nothing to add, no error
    assert EditedLists(tmp_path).texts() == {"en_US-joe-medium": ANNOUNCEMENTS[:3]}


def test_an_entry_taken_off_is_no_longer_pinned(piper, tmp_path):
    cache = make_cache(tmp_path)
    with live_server({"piper": piper}, cache=cache, settings=HttpSettings(token=TOKEN), prerender_dir=tmp_path / "lists") as live:
        joe = {"voice": "en_US-joe-medium"}
        for text in ANNOUNCEMENTS[:2]:
            httpx.post(f"{live.base_url}/v1/prerender", json={**joe, "text": text}, headers=AUTH).raise_for_status()
        wait_until_done(live.base_url, 2)
        voice = live.harness.catalogue.find("en_US-joe-medium")
        kept, removed = (live.harness.synthesizer.key_for(voice, voice.output_format, text) for text in ANNOUNCEMENTS[:2])
        assert cache.disk._pinned == {kept, removed}
        httpx.post(f"{live.base_url}/v1/prerender/remove", json={**joe, "text": ANNOUNCEMENTS[1]}, headers=AUTH).raise_for_status()
        progress = wait_until_done(live.base_url, 1)
        assert cache.disk._pinned == {kept}
    assert progress["total"] == 1


def test_prerender_files_beyond_the_limit_are_one_line(tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(ANNOUNCEMENTS[:3]) + "\n", encoding="utf-8")
    result = run_cli("--data-dir", str(tmp_path / "data"), "--prerender", str(listed), "--prerender-max-texts", "2")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--prerender: the lists hold 3 texts, more than --prerender-max-texts 2" in result.stderr
