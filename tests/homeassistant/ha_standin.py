"""A stand-in for Home Assistant's WebSocket API on loopback, written from its documentation
(developers.home-assistant.io/docs/api/websocket): the auth phase, the registry and state
commands the name watcher sends, `subscribe_events`, and events pushed on demand."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve

TOKEN = "test-long-lived-token-4f9a"


@dataclass
class HomeData:
    areas: list[dict[str, Any]] = field(default_factory=list)
    floors: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    exposed: dict[str, dict[str, bool]] = field(default_factory=dict)


class HomeAssistantStandIn:
    def __init__(self, data: HomeData, token: str = TOKEN) -> None:
        self.data = data
        self.token = token
        self.malformed = False
        """Answer config/area_registry/list with something that is not a list."""
        self.tokens_seen: list[str] = []
        self.commands: list[str] = []
        self.connections = 0
        self._subscribers: list[tuple[ServerConnection, int, str]] = []
        self._server: Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"http://{host}:{port}"

    async def fire(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        """Send an event to every connection subscribed to it."""
        for connection, subscription, subscribed in list(self._subscribers):
            if subscribed == event_type:
                message = {"id": subscription, "type": "event", "event": {"event_type": event_type, "data": data or {}}}
                await connection.send(json.dumps(message))

    async def _handle(self, connection: ServerConnection) -> None:
        if connection.request is None or connection.request.path != "/api/websocket":
            await connection.close(1008, "not found")
            return
        self.connections += 1
        await connection.send(json.dumps({"type": "auth_required", "ha_version": "2025.7.0"}))
        auth = json.loads(await connection.recv())
        self.tokens_seen.append(auth.get("access_token", ""))
        if auth.get("type") != "auth" or auth.get("access_token") != self.token:
            await connection.send(json.dumps({"type": "auth_invalid", "message": "Invalid access token or password"}))
            await connection.close()
            return
        await connection.send(json.dumps({"type": "auth_ok", "ha_version": "2025.7.0"}))
        try:
            async for raw in connection:
                message = json.loads(raw)
                await connection.send(json.dumps(self._answer(connection, message)))
        finally:
            self._subscribers = [entry for entry in self._subscribers if entry[0] is not connection]

    def _answer(self, connection: ServerConnection, message: dict[str, Any]) -> dict[str, Any]:
        kind = message.get("type")
        self.commands.append(kind)
        results: dict[str, Any] = {
            "config/area_registry/list": {"oops": True} if self.malformed else self.data.areas,
            "config/floor_registry/list": self.data.floors,
            "get_states": self.data.states,
            "homeassistant/expose_entity/list": {"exposed_entities": self.data.exposed},
        }
        if kind == "subscribe_events":
            self._subscribers.append((connection, message["id"], message["event_type"]))
            return {"id": message["id"], "type": "result", "success": True, "result": None}
        if kind in results:
            return {"id": message["id"], "type": "result", "success": True, "result": results[kind]}
        return {
            "id": message["id"],
            "type": "result",
            "success": False,
            "error": {"code": "unknown_command", "message": "Unknown command."},
        }


def sample_home() -> HomeData:
    """A small house: two areas on one floor, three entities of which two are exposed."""
    return HomeData(
        areas=[
            {"area_id": "kitchen", "name": "Kitchen", "aliases": ["Cookhouse"], "floor_id": "ground"},
            {"area_id": "living_room", "name": "Living Room", "aliases": [], "floor_id": "ground"},
        ],
        floors=[{"floor_id": "ground", "name": "Ground Floor", "aliases": [], "level": 0}],
        states=[
            {"entity_id": "light.kitchen", "state": "on", "attributes": {"friendly_name": "Kitchen Light"}},
            {"entity_id": "cover.patio", "state": "open", "attributes": {"friendly_name": "Patio Blind", "device_class": "blind"}},
            {"entity_id": "switch.secret", "state": "off", "attributes": {"friendly_name": "Secret Switch"}},
        ],
        exposed={
            "light.kitchen": {"conversation": True},
            "cover.patio": {"conversation": True},
            "switch.secret": {"conversation": False},
        },
    )


async def wait_for(condition, timeout: float = 20.0) -> None:
    """Poll until `condition()` is true; generous, as the machine is shared."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
