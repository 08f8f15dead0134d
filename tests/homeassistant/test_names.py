"""The house's names come from Home Assistant's WebSocket API (a stand-in written from its
documentation, on loopback): auth, the registry commands, refresh on a registry event; and a
Home Assistant that refuses the token, sends malformed data or is not there costs one log
line and a retry, never a crash and never the token in the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import pytest

from wyoming_indextts.homeassistant.house import Entity, House, Place
from wyoming_indextts.homeassistant.names import (
    NameWatcher,
    WatchSettings,
    websocket_url,
)

from .ha_standin import TOKEN, HomeAssistantStandIn, sample_home, wait_for

FAST = WatchSettings(retry_first=0.05, retry_max=0.2, settle=0.05, timeout=10)


@contextlib.asynccontextmanager
async def watching(url: str, token: str = TOKEN):
    houses: list[House] = []

    async def on_house(house: House) -> None:
        houses.append(house)

    watcher = NameWatcher(url, token, on_house, FAST)
    task = asyncio.create_task(watcher.run())
    try:
        yield watcher, houses
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_urls_follow_home_assistant_and_the_supervisor():
    assert websocket_url("http://homeassistant.local:8123") == "ws://homeassistant.local:8123/api/websocket"
    assert websocket_url("https://ha.example.org/") == "wss://ha.example.org/api/websocket"
    assert websocket_url("http://supervisor/core") == "ws://supervisor/core/websocket"
    with pytest.raises(ValueError):
        websocket_url("homeassistant.local")


async def test_names_are_fetched_after_auth_and_refreshed_on_a_registry_event():
    data = sample_home()
    async with HomeAssistantStandIn(data) as hass, watching(hass.url) as (watcher, houses):
        await wait_for(lambda: houses)
        house = houses[0]
        assert house.areas == (Place("Kitchen", ("Cookhouse",)), Place("Living Room"))
        assert house.floors == (Place("Ground Floor"),)
        # Only what is exposed to Assist, by friendly name; the unexposed switch is left out.
        assert house.entities == (
            Entity("cover.patio", "Patio Blind", device_class="blind"),
            Entity("light.kitchen", "Kitchen Light"),
        )
        assert hass.tokens_seen == [TOKEN]
        await wait_for(lambda: hass.commands.count("subscribe_events") == 3 and watcher.connected)

        data.areas.append({"area_id": "attic", "name": "Attic", "aliases": [], "floor_id": None})
        await hass.fire("area_registry_updated", {"action": "create", "area_id": "attic"})
        await wait_for(lambda: len(houses) == 2)
        assert Place("Attic") in houses[1].areas
        assert hass.connections == 1  # refreshed on the open connection


async def test_a_refused_token_is_one_clear_line_and_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    async with HomeAssistantStandIn(sample_home()) as hass, watching(hass.url, token="wrong-token-123") as (watcher, houses):
        await wait_for(lambda: hass.connections >= 3)  # it keeps retrying
        assert not houses and not watcher.connected
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "refused the access token" in warnings[0]
    # Not even at DEBUG (the stand-in's own server log, Home Assistant's side, aside).
    assert not [r for r in caplog.records if "wrong-token-123" in r.getMessage() and not r.name.startswith("websockets.server")]


async def test_malformed_registry_data_is_reported_and_retried_until_it_is_fixed(caplog):
    caplog.set_level(logging.WARNING)
    async with HomeAssistantStandIn(sample_home()) as hass:
        hass.malformed = True
        async with watching(hass.url) as (_, houses):
            await wait_for(lambda: hass.connections >= 2)
            assert not houses
            hass.malformed = False
            await wait_for(lambda: houses)
    assert sum("cannot read" in r.getMessage() for r in caplog.records) == 1


async def test_an_unreachable_home_assistant_is_retried_with_back_off(caplog):
    caplog.set_level(logging.WARNING)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with watching(f"http://127.0.0.1:{port}") as (watcher, houses):
        await wait_for(lambda: watcher.last_error is not None)
        await asyncio.sleep(0.5)
        assert not houses
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1
