"""The house's names, from Home Assistant's WebSocket API, kept current.

The protocol (developers.home-assistant.io/docs/api/websocket): the server opens with
`auth_required`; the client answers `{"type": "auth", "access_token": ...}` and gets
`auth_ok` or `auth_invalid`. Then each command carries an `id` and is answered by a `result`
with the same id. Read here: `config/area_registry/list`, `config/floor_registry/list`,
`homeassistant/expose_entity/list` (which entities Assist may name) and `get_states` (their
friendly names and device classes, what the default agent matches `{name}` against). Then
`subscribe_events` for `area_registry_updated`, `floor_registry_updated` and
`entity_registry_updated`: any of them (or an hour without one, since exposing an entity
fires no event) fetches the names again.

A Home Assistant that cannot be reached, refuses the token or sends something malformed
costs one log line and a retry with back-off; nothing here stops the server from speaking.
The token never appears in a log or an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from .house import Entity, House, Place

_LOGGER = logging.getLogger(__name__)
_WIRE_LOGGER = logging.getLogger(f"{__name__}.wire")
# websockets logs every frame at DEBUG, the auth message with its token included: never
# below INFO, even with --debug.
_WIRE_LOGGER.setLevel(logging.INFO)

ENV_TOKEN = "WYOMING_INDEXTTS_HA_TOKEN"
"""The access token from the environment (the add-on passes the Supervisor's token here)."""

REGISTRY_EVENTS = ("area_registry_updated", "floor_registry_updated", "entity_registry_updated")
MAX_MESSAGE_BYTES = 64 << 20
"""The entity registry of a large house runs to megabytes."""


class AuthRefused(Exception):
    """Home Assistant said auth_invalid."""


class MalformedReply(Exception):
    """Home Assistant answered something this client cannot read."""


@dataclass(frozen=True)
class WatchSettings:
    retry_first: float = 5.0
    retry_max: float = 300.0
    refresh: float = 3600.0
    """Seconds between fetches when no registry event comes."""
    settle: float = 2.0
    """An edit in Home Assistant's settings fires several events: wait this long for quiet."""
    timeout: float = 30.0
    """Seconds one command may take."""


def read_token(path: Path | None, environ: Mapping[str, str]) -> str:
    """The long-lived access token: from the file when given, else the environment. Never
    from the command line, which every user of the machine can read."""
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            # The path is not repeated: a token mistaken for a path must not reach a log.
            raise ValueError(f"cannot read the Home Assistant token file (--ha-token-file): {err.__class__.__name__}") from None
        if not token:
            raise ValueError("the Home Assistant token file (--ha-token-file) is empty")
        return token
    token = environ.get(ENV_TOKEN, "").strip()
    if not token:
        raise ValueError(f"Home Assistant needs an access token: --ha-token-file PATH or the environment variable {ENV_TOKEN}")
    return token


def websocket_url(url: str) -> str:
    """`http://homeassistant.local:8123` → `ws://homeassistant.local:8123/api/websocket`;
    the Supervisor's proxy `http://supervisor/core` → `ws://supervisor/core/websocket`."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"not an http(s):// or ws(s):// URL: {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/websocket"):
        path += "/websocket" if path.endswith("/core") else "/api/websocket"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class Session:
    """One authenticated connection."""

    def __init__(self, connection: ClientConnection, timeout: float) -> None:
        self.connection = connection
        self.timeout = timeout
        self._next_id = 1
        self.events_skipped = 0
        """Events that arrived while a command waited for its result."""

    @classmethod
    async def open(cls, url: str, token: str, timeout: float) -> Session:
        connection = await connect(url, max_size=MAX_MESSAGE_BYTES, open_timeout=timeout, logger=_WIRE_LOGGER)
        session = cls(connection, timeout)
        try:
            await session._authenticate(token)
        except BaseException:
            await connection.close()
            raise
        return session

    async def _authenticate(self, token: str) -> None:
        first = await self._receive()
        if first.get("type") != "auth_required":
            raise MalformedReply(f"expected auth_required, got {first.get('type')!r}")
        await self.connection.send(json.dumps({"type": "auth", "access_token": token}))
        answer = await self._receive()
        if answer.get("type") == "auth_invalid":
            raise AuthRefused(str(answer.get("message") or "auth_invalid"))
        if answer.get("type") != "auth_ok":
            raise MalformedReply(f"expected auth_ok, got {answer.get('type')!r}")

    async def _receive(self) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), self.timeout)
        try:
            message = json.loads(raw)
        except ValueError as err:
            raise MalformedReply(f"not JSON: {err}") from None
        if not isinstance(message, dict):
            raise MalformedReply("a message that is not a JSON object")
        return message

    async def command(self, kind: str, **fields: Any) -> Any:
        """Send one command and return its result; events that arrive meanwhile are counted
        in `events_skipped` (the names are then fetched again)."""
        message_id = self._next_id
        self._next_id += 1
        await self.connection.send(json.dumps({"id": message_id, "type": kind, **fields}))
        while True:
            answer = await self._receive()
            if answer.get("type") == "event":
                self.events_skipped += 1
            if answer.get("id") != message_id or answer.get("type") != "result":
                continue
            if not answer.get("success"):
                error = answer.get("error") or {}
                raise MalformedReply(f"{kind} failed: {error.get('code')}: {error.get('message')}")
            return answer.get("result")

    async def fetch_house(self) -> House:
        areas = _list_of_dicts(await self.command("config/area_registry/list"), "area registry")
        floors = _list_of_dicts(await self.command("config/floor_registry/list"), "floor registry")
        exposed = await self.command("homeassistant/expose_entity/list")
        states = _list_of_dicts(await self.command("get_states"), "states")
        if not isinstance(exposed, dict) or not isinstance(exposed.get("exposed_entities"), dict):
            raise MalformedReply("homeassistant/expose_entity/list has no exposed_entities")
        to_assist = {
            entity_id
            for entity_id, assistants in exposed["exposed_entities"].items()
            if isinstance(assistants, dict) and assistants.get("conversation") is True
        }
        entities = []
        for state in states:
            entity_id = state.get("entity_id")
            if entity_id not in to_assist:
                continue
            attributes = state.get("attributes") or {}
            if not isinstance(attributes, dict):
                raise MalformedReply(f"{entity_id}: attributes is not an object")
            name = attributes.get("friendly_name") or str(entity_id).split(".", 1)[-1].replace("_", " ")
            device_class = attributes.get("device_class")
            entities.append(Entity(str(entity_id), str(name), device_class=str(device_class) if device_class else None))
        return House(
            areas=tuple(_place(area, "area") for area in areas),
            floors=tuple(_place(floor, "floor") for floor in floors),
            entities=tuple(sorted(entities, key=lambda entity: entity.entity_id)),
        )

    async def subscribe(self, event_type: str) -> None:
        await self.command("subscribe_events", event_type=event_type)

    async def next_event(self) -> dict[str, Any]:
        while True:
            message = await self.connection.recv()
            with contextlib.suppress(ValueError):
                parsed = json.loads(message)
                if isinstance(parsed, dict) and parsed.get("type") == "event":
                    return parsed

    async def close(self) -> None:
        await self.connection.close()


def _list_of_dicts(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise MalformedReply(f"the {what} is not a list of objects")
    return value


def _place(entry: dict[str, Any], what: str) -> Place:
    name = entry.get("name")
    aliases = entry.get("aliases") or []
    if not isinstance(name, str) or not name.strip() or not isinstance(aliases, list):
        raise MalformedReply(f"an {what} entry without a name: {sorted(entry)}")
    return Place(name.strip(), tuple(str(alias).strip() for alias in aliases if str(alias).strip()))


class NameWatcher:
    """Connects, fetches the names, hands each new set to `on_house`, and keeps them current
    until cancelled."""

    def __init__(
        self,
        url: str,
        token: str,
        on_house: Callable[[House], Awaitable[None]],
        settings: WatchSettings | None = None,
    ) -> None:
        self.url = websocket_url(url)
        self._token = token
        self.on_house = on_house
        self.settings = settings or WatchSettings()
        self.house: House | None = None
        self.connected = False
        self.last_error: str | None = None

    async def run(self) -> None:
        delay = self.settings.retry_first
        while True:
            try:
                await self._session()
            except AuthRefused as err:
                self._failed(f"Home Assistant at {self.url} refused the access token ({err}); make a new long-lived token")
            except MalformedReply as err:
                self._failed(f"Home Assistant at {self.url} sent data this server cannot read: {err}")
            except (OSError, asyncio.TimeoutError, InvalidURI, InvalidHandshake, WebSocketException) as err:
                self._failed(f"Home Assistant at {self.url} is unreachable: {describe(err)}")
            if self.connected:
                delay = self.settings.retry_first  # it worked for a while: start the back-off again
            self.connected = False
            _LOGGER.debug("Next attempt to reach Home Assistant in %.0f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.retry_max)

    def _failed(self, message: str) -> None:
        # One line per new trouble; the same trouble again is only a debug line.
        if message != self.last_error:
            _LOGGER.warning("%s; retrying with back-off, names unchanged", message)
        else:
            _LOGGER.debug(message)
        self.last_error = message

    async def _session(self) -> None:
        session = await Session.open(self.url, self._token, self.settings.timeout)
        try:
            # Subscribed before fetching, so no change falls between the two.
            for event_type in REGISTRY_EVENTS:
                await session.subscribe(event_type)
            await self._fetch(session)
            self.connected = True
            if self.last_error is not None:
                _LOGGER.info("Connected to Home Assistant at %s again", self.url)
            self.last_error = None
            while True:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(session.next_event(), self.settings.refresh)
                    await self._settle(session)
                await self._fetch(session)
        finally:
            await session.close()

    async def _fetch(self, session: Session) -> None:
        """Fetch and publish until no registry event came in while fetching."""
        while True:
            seen = session.events_skipped
            await self._publish(await session.fetch_house())
            if session.events_skipped == seen:
                return

    async def _settle(self, session: Session) -> None:
        while True:
            try:
                await asyncio.wait_for(session.next_event(), self.settings.settle)
            except asyncio.TimeoutError:
                return

    async def _publish(self, house: House) -> None:
        if house == self.house:
            return
        self.house = house
        _LOGGER.info(
            "Home Assistant names: %d areas, %d floors, %d entities exposed to Assist",
            len(house.areas),
            len(house.floors),
            len(house.entities),
        )
        await self.on_house(house)


def describe(err: BaseException) -> str:
    return str(err) or type(err).__name__
