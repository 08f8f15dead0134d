"""Runs the HTTP app on the Wyoming server's event loop (uvicorn, embedded): one process, one
synthesizer, one cache for both protocols.

The two servers share the process's file descriptors and the loop, so HTTP connections are
bounded: at most MAX_CONNECTIONS at once, and one whose request line and headers do not
arrive within REQUEST_HEAD_SECONDS (uvicorn has no such timeout) is closed. The peer is the
socket's address: proxy headers count only from --http-trusted-proxy addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import error_body

_LOGGER = logging.getLogger(__name__)

MAX_CONNECTIONS = 200
"""Open HTTP connections at once; more are answered 503 and closed at once. A browser opens
at most 6 per server; the limit keeps file descriptors for Wyoming's satellites."""
REQUEST_HEAD_SECONDS = 10.0
"""From a connection's opening (or its previous reply) to a complete request head."""
KEEP_ALIVE_SECONDS = 5
"""An idle kept-alive connection is closed after this long (uvicorn's default, said aloud)."""


def _reply(status: int, reason: str, message: str, code: str) -> bytes:
    """A whole HTTP/1.1 reply with a JSON error, for the protocol level (no ASGI app involved)."""
    body = json.dumps(error_body(status, message, code)).encode()
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


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


class _BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and a deadline for each request head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._served: object = None
        """The cycle (request) whose reply last completed; a new one means a new head came."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > MAX_CONNECTIONS:
            transport.write(_reply(503, "Service Unavailable", f"This server has {MAX_CONNECTIONS} HTTP connections open: try again shortly", "busy"))
            transport.close()
            return
        self._wait_for_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self.cycle is not self._served:
            self._head_timer.cancel()
            self._head_timer = None

    def on_response_complete(self) -> None:
        served = self.cycle
        super().on_response_complete()
        # A pipelined request already being served has its head; otherwise wait for the next.
        if self.cycle is served and not self.transport.is_closing():
            self._wait_for_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        # A request h11 cannot parse: the same JSON error shape as every other reply.
        self.transport.write(_reply(400, "Bad Request", f"Not an HTTP request this server can read: {msg}", "bad_http"))
        self.transport.close()

    def _wait_for_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._served = self.cycle
        self._head_timer = self.loop.call_later(REQUEST_HEAD_SECONDS, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service owns SIGINT/SIGTERM and stops this server itself.
        yield


class HttpServer:
    def __init__(self, app: FastAPI, address: HttpAddress, trusted_proxies: Iterable[str] = ()) -> None:
        """`trusted_proxies`: the reverse proxies whose X-Forwarded-For names the client
        (--http-trusted-proxy); for everyone else the peer is the socket's address."""
        proxies = sorted(trusted_proxies)
        config = uvicorn.Config(
            app,
            host=address.host,
            port=address.port,
            http=_BoundedH11Protocol,
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told otherwise: any local
            # process could then claim to be the trusted peer.
            proxy_headers=bool(proxies),
            forwarded_allow_ips=proxies,
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
