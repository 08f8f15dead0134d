"""Runs the HTTP app on the Wyoming server's event loop (uvicorn, embedded): one process, one
synthesizer, one cache for both protocols."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpAddress:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_http_uri(text: str) -> HttpAddress:
    """`http://HOST:PORT` → address; ValueError with a message a person can act on."""
    parts = urlsplit(text)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"expected http://HOST:PORT (e.g. http://0.0.0.0:10210), got {text!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in {text!r}") from None
    if port is None:
        raise ValueError(f"no port in {text!r}: use http://HOST:PORT")
    return HttpAddress(parts.hostname, port)


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service owns SIGINT/SIGTERM and stops this server itself.
        yield


class HttpServer:
    def __init__(self, app: FastAPI, address: HttpAddress) -> None:
        config = uvicorn.Config(
            app,
            host=address.host,
            port=address.port,
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self.address = address
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                # uvicorn logs why (the port is in use, the host unknown) and exits
                with contextlib.suppress(SystemExit):
                    self._task.result()
                raise OSError(f"cannot listen on http://{self.address.host}:{self.address.port}")
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        return self._server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
