"""The HTTP server's guards, as plain ASGI middleware so they act before a body is read and
never buffer a streamed response: who may do what (the token, the trusted peer, the Host and
the browser's site), the body size and read limits, the request counter."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import send_json_error
from .metrics import Metrics

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SPEECH_PATHS = frozenset({"/tts", "/v1/audio/speech"})
"""POSTs that only read: they speak text, they change nothing a user owns."""
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})
"""Sec-Fetch-Site values of a request the user's own page (or the user, typing) made."""
BODY_IDLE_SECONDS = 30.0
"""A request body that stops arriving for this long is answered 408 and its connection freed."""
LOOPBACK_NAMES = frozenset({"localhost"})
_SHOWN_HOST_CHARS = 80


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
    allowed_hosts: frozenset[str] = frozenset()
    """Host names a tokenless request may name besides localhost and loopback addresses (the
    bind address, --http-allowed-host), so a page whose name was rebound to this machine's
    address (DNS rebinding) cannot read or do what the loopback user can."""

    def needs_token(self, method: str, path: str, trusted: bool = False) -> bool:
        if trusted:
            return False
        if self.public_paths(path) and method in SAFE_METHODS:
            return False
        return self.protect_reads or (method not in SAFE_METHODS and path not in SPEECH_PATHS)

    def problem(self, scope: Scope) -> tuple[int, str, str] | None:
        """(status, message, code) when the request must be refused; None to serve it."""
        method, path = scope["method"], scope["path"]
        headers = dict(scope["headers"])
        given = _bearer(headers)
        if given is not None and self.token is not None and hmac.compare_digest(given, self.token.encode("utf-8")):
            # A browser sends no Authorization header to another site without the CORS
            # preflight this server never answers: a request with the token is no page's forgery.
            return None
        peer = (scope.get("client") or (None,))[0]
        trusted = peer in self.trusted_peers
        if self.needs_token(method, path, trusted):
            if self.token is None:
                return 403, "This request changes the server: start it with --http-token TOKEN and send 'Authorization: Bearer TOKEN'", "unauthorized"
            if given is None:
                return 401, "This request needs the server's token: send 'Authorization: Bearer TOKEN' (--http-token)", "unauthorized"
            return 401, "Wrong token: send the value of the server's --http-token as 'Authorization: Bearer TOKEN'", "unauthorized"
        # Served without a token: refuse what only a page of another site would send. The
        # trusted proxy forwards the browser's Host (its own public name), so only its
        # requests skip the Host check; a page's static files have nothing to read.
        host = headers.get(b"host")
        if not trusted and host is not None and not (self.public_paths(path) and method in SAFE_METHODS) and not self.host_allowed(host):
            shown = host.decode("latin-1")[:_SHOWN_HOST_CHARS]
            return 400, f"Host {shown!r} is not a name of this server: open it as localhost or by its address, or start it with --http-allowed-host NAME", "unknown_host"
        if method not in SAFE_METHODS and _cross_site(headers, host):
            return 403, "A page of another site sent this request: refused. A program of yours can send the token ('Authorization: Bearer TOKEN') instead", "cross_site"
        return None

    def host_allowed(self, host: bytes) -> bool:
        name = _host_name(host.decode("latin-1"))
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return name in LOOPBACK_NAMES or name in self.allowed_hosts
        # 0.0.0.0 names no host, though a browser sends requests to it: never a name of ours.
        return address.is_loopback or (not address.is_unspecified and name in self.allowed_hosts)


def _bearer(headers: dict[bytes, bytes]) -> bytes | None:
    scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
    given = given.strip()
    return given if scheme.lower() == b"bearer" and given else None


def _host_name(host: str) -> str:
    """`Host` without its port, lower case, without a trailing dot or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _cross_site(headers: dict[bytes, bytes], host: bytes | None) -> bool:
    """True when a browser says another site (or another port's page) sent the request:
    Sec-Fetch-Site where the browser sends it, else an Origin that is not this Host. A
    client that sends neither is no browser, and can send any header it likes anyway."""
    site = headers.get(b"sec-fetch-site")
    if site is not None:
        return site.decode("latin-1").strip().lower() not in SAME_SITE_FETCHES
    origin = headers.get(b"origin")
    if origin is None:
        return False
    netloc = urlsplit(origin.decode("latin-1").strip()).netloc.lower()
    return not netloc or host is None or netloc != host.decode("latin-1").strip().lower()


class AccessGuard:
    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self.policy.problem(scope)
            if problem is not None:
                status, message, code = problem
                extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
                await send_json_error(send, status, message, code, extra)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuses a body over its route's limit: by Content-Length before reading, else while
    reading (the route then answers 413), so an endless chunked upload is cut off too; a body
    that stops arriving for BODY_IDLE_SECONDS is answered 408."""

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
        complete = False

        async def limited() -> Message:
            nonlocal received, complete
            if complete:  # the body is in: now only a hang-up can come, whenever it comes
                return await receive()
            try:
                event = await asyncio.wait_for(receive(), BODY_IDLE_SECONDS)
            except TimeoutError:
                raise HTTPException(408, f"The request body stopped arriving for {BODY_IDLE_SECONDS:.0f} s") from None
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                complete = not event.get("more_body", False)
                if received > limit:
                    raise HTTPException(413, message)
            else:
                complete = True
            return event

        await self.app(scope, limited, send)


class RequestCounter:
    """Counts each request by its route's path (also when a guard refused it before routing)
    and status; 499 (nginx's 'client closed request') when the client left before a reply."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None
        left = False

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        async def watching_receive() -> Message:
            nonlocal left
            message = await receive()
            left = left or message["type"] == "http.disconnect"
            return message

        try:
            await self.app(scope, watching_receive, counting_send)
        finally:
            if status is None:
                status = 499 if left else 500
            self.metrics.requests.labels(self._route(scope), str(status)).inc()

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return route.path
        partial = None
        for candidate in self.routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                return getattr(candidate, "path", "unmatched")
            if match is Match.PARTIAL and partial is None:
                partial = getattr(candidate, "path", "unmatched")
        return partial or "unmatched"
