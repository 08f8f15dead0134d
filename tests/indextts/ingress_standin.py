"""A stand-in for Home Assistant's ingress proxy on loopback: the page and API under
`/api/hassio_ingress/<token>/`, forwarded with the prefix stripped and `X-Ingress-Path` set,
responses streamed back as they come (as the Supervisor's proxy does)."""

from __future__ import annotations

import httpx
from starlette.types import Receive, Scope, Send

HOP_HEADERS = {b"host", b"connection", b"transfer-encoding", b"keep-alive"}


class IngressProxy:
    def __init__(self, upstream: str, prefix: str = "/api/hassio_ingress/Xy12token") -> None:
        self.upstream = upstream
        self.prefix = prefix
        self.client = httpx.AsyncClient(timeout=120)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if not path.startswith(self.prefix + "/"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not under the ingress prefix"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k not in HOP_HEADERS]
        headers.append((b"x-ingress-path", self.prefix.encode()))
        query = scope["query_string"].decode()
        url = self.upstream + path[len(self.prefix) :] + (f"?{query}" if query else "")
        request = self.client.build_request(scope["method"], url, headers=headers, content=body)
        response = await self.client.send(request, stream=True)
        try:
            out = [(k.encode(), v.encode()) for k, v in response.headers.items() if k.encode() not in HOP_HEADERS]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()
