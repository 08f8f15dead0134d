"""The HTTP server's guards, as plain ASGI middleware so they act before a body is read and
never buffer a streamed response: the token, the body size limits, the request counter."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SPEECH_PATHS = frozenset({"/tts", "/v1/audio/speech"})
"""POSTs that only read: they speak text, they change nothing a user owns."""


@dataclass
class AccessPolicy:
    token: str | None
    """--http-token; None: nothing that changes the server is allowed. Replaced in place when
    the page rotates it (token_admin.py), which is why the policy is not frozen."""
    protect_reads: bool
    """Listening beyond loopback: every request but the page's own files needs the token."""
    public_paths: Callable[[str], bool]
    """The page's static files: HTML and script with no data in them (a browser cannot send a
    token when it opens a page)."""
    trusted_peers: frozenset[str] = frozenset()
    """Peers that authenticated the user themselves: Home Assistant's ingress proxy sends the
    add-on's page to signed-in users only, and its browser requests carry no token."""

    def needs_token(self, method: str, path: str, peer: str | None = None) -> bool:
        if peer is not None and peer in self.trusted_peers:
            return False
        if self.public_paths(path) and method in SAFE_METHODS:
            return False
        return self.protect_reads or (method not in SAFE_METHODS and path not in SPEECH_PATHS)


async def send_json_error(send: Send, status: int, message: str, code: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class TokenGuard:
    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = (scope.get("client") or (None,))[0]
        if scope["type"] == "http" and self.policy.needs_token(scope["method"], scope["path"], peer):
            problem = self._problem(scope)
            if problem is not None:
                status, message = problem
                await send_json_error(send, status, message, "unauthorized", [(b"www-authenticate", b"Bearer")])
                return
        await self.app(scope, receive, send)

    def _problem(self, scope: Scope) -> tuple[int, str] | None:
        if self.policy.token is None:
            return 403, "This request changes the server: start it with --http-token TOKEN and send 'Authorization: Bearer TOKEN'"
        headers = dict(scope["headers"])
        scheme, _, given = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return 401, "This request needs the server's token: send 'Authorization: Bearer TOKEN' (--http-token)"
        if not hmac.compare_digest(given.strip().encode("utf-8", "replace"), self.policy.token.encode("utf-8")):
            return 401, "Wrong token: send the value of the server's --http-token as 'Authorization: Bearer TOKEN'"
        return None


class BodyLimit:
    """Refuses a body over its route's limit: by Content-Length before reading, else while
    reading (the route then answers 413), so an endless chunked upload is cut off too."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        message = f"Request body is larger than this endpoint's limit of {limit} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await send_json_error(send, 413, message, "too_large")
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    raise HTTPException(413, message)
            return event

        await self.app(scope, limited, send)


class RequestCounter:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            route = scope.get("route")
            self.metrics.requests.labels(getattr(route, "path", "unmatched"), str(status)).inc()
