"""Home Assistant's replies rendered ahead on the real server: names from a stand-in of its
WebSocket API, replies rendered in the cloned voice at idle time and answered from the cache,
re-listed and re-pinned when the names change, progress in /health."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_indextts.homeassistant.ahead import RepliesAhead
from wyoming_indextts.homeassistant.names import NameWatcher, WatchSettings
from wyoming_indextts.http import HttpSettings
from wyoming_indextts.http.app import create_app
from wyoming_indextts.prerender import Prerenderer
from wyoming_indextts.sentences import SplitterSettings

from ..conftest import (
    CountingEngine,
    assert_speech,
    make_cache,
    read_until,
    running_server,
)
from .ha_standin import TOKEN, HomeAssistantStandIn, sample_home, wait_for

FAST = WatchSettings(retry_first=0.05, retry_max=0.2, settle=0.05, timeout=10)


@contextlib.asynccontextmanager
async def rendering_ahead(harness, folder, max_replies: int, url: str):
    ahead = RepliesAhead(harness.synthesizer, SplitterSettings(), folder, [None], max_replies)
    prerenderer = Prerenderer(harness.synthesizer, SplitterSettings(), extra=ahead)
    ahead.on_change = prerenderer.refresh
    watcher = asyncio.create_task(NameWatcher(url, TOKEN, ahead.update, FAST).run())
    try:
        yield ahead, prerenderer
    finally:
        watcher.cancel()
        prerenderer.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_replies_are_rendered_ahead_and_answered_from_the_cache(piper, tmp_path):
    engine = CountingEngine(piper, name="indextts", voice_name="grandma", languages=("en",))
    cache = make_cache(tmp_path)
    async with HomeAssistantStandIn(sample_home()) as hass, running_server({"indextts": engine, "piper": piper}, "grandma", cache=cache) as harness:
        async with rendering_ahead(harness, tmp_path / "ha", 4, hass.url) as (ahead, prerenderer):
            await wait_for(lambda: ahead.lists(), timeout=30)
            status = await ahead.status()
            assert status["listed"] == 4 and status["names"] == {"areas": 2, "floors": 1, "entities": 2}
            await wait_for(lambda: prerenderer.progress.rendered + prerenderer.progress.cached == 4, timeout=120)
            status = await ahead.status()
            assert (status["rendered"], status["left"]) == (4, 0)
            # /health says so too.
            app = create_app(harness.catalogue, harness.synthesizer, HttpSettings(), prerenderer=prerenderer)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
                health = (await client.get("/health")).json()
            assert health["homeassistant_replies"]["listed"] == 4 and health["homeassistant_replies"]["left"] == 0
            first = ahead.lists()[0].texts()[0]
            assert first == "Turned on the light"  # the most likely reply leads the list
            rendered = len(engine.calls)
            async with harness.client() as client:
                await client.write_event(Synthesize(text=first, voice=SynthesizeVoice(name="grandma")).event())
                response = await read_until(client, "audio-stop")
            assert_speech(response.audio, response.rate, first)
            assert len(engine.calls) == rendered  # from the cache, in the cloned voice
        # A restart before Home Assistant answers: last run's lists, so the pins hold.
        restarted = RepliesAhead(harness.synthesizer, SplitterSettings(), tmp_path / "ha", [None])
        assert [(listed.voice, listed.texts()) for listed in restarted.lists()] == [("grandma", ahead.lists()[0].texts())]


async def test_new_names_are_listed_and_pinned_and_gone_ones_unpinned(piper, tmp_path):
    # Slow on purpose: this test is about the lists and pins, not the renders.
    engine = CountingEngine(piper, name="indextts", voice_name="grandma", languages=("en",), delay=5)
    cache = make_cache(tmp_path)
    data = sample_home()
    async with HomeAssistantStandIn(data) as hass, running_server({"indextts": engine, "piper": piper}, "grandma", cache=cache) as harness:
        voice = harness.catalogue.resolve("grandma")

        def pinned(text: str) -> bool:
            return harness.synthesizer.key_for(voice, voice.output_format, text) in cache.disk._pinned

        async with rendering_ahead(harness, tmp_path / "ha", 200, hass.url) as (ahead, _):
            await wait_for(lambda: ahead.lists(), timeout=30)
            await wait_for(lambda: pinned("Yes, Patio Blind"))
            assert "Yes, Patio Blind" in ahead.lists()[0].texts()
            assert not pinned("Yes, Porch Light")
            await wait_for(lambda: hass.commands.count("subscribe_events") == 3)

            data.states.append({"entity_id": "light.porch", "state": "off", "attributes": {"friendly_name": "Porch Light"}})
            data.exposed["light.porch"] = {"conversation": True}
            data.exposed["cover.patio"] = {"conversation": False}
            await hass.fire("entity_registry_updated", {"action": "update", "entity_id": "light.porch"})
            await wait_for(lambda: pinned("Yes, Porch Light"))
            assert not pinned("Yes, Patio Blind")
            texts = ahead.lists()[0].texts()
            assert "Yes, Porch Light" in texts and "Yes, Patio Blind" not in texts
