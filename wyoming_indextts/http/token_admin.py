"""The HTTP API's token for Home Assistant add-on users, who cannot read the add-on's /data:
the page behind ingress shows it once to an administrator and can replace it with a new one.

Only with --http-token-file (the add-on passes its /data/http-token), since a rotated token must
outlive a restart; and only for requests from a --http-trusted-peer (the ingress proxy, which
opens the page to signed-in administrators only). Holding the token is not enough: whoever has
it must not be able to replace it and lock the owner out.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict

from .errors import ApiError
from .guard import AccessPolicy

SHOWN_SUFFIX = ".shown"
"""Beside the token file: present once the token in it has been shown."""


class TokenFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.marker = path.with_name(path.name + SHOWN_SUFFIX)

    def shown(self) -> bool:
        return self.marker.exists()

    def reveal(self) -> str | None:
        """The token the first time; None ever after (until it is rotated)."""
        if self.shown():
            return None
        token = self.path.read_text(encoding="utf-8").strip()
        self.marker.touch()
        return token

    def rotate(self) -> str:
        """A new token, written in place of the old one (atomically, readable by the owner
        only) and counted as shown: the administrator who asked for it sees it."""
        token = secrets.token_hex(24)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:  # mkstemp makes it 0600
                file.write(token)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self.marker.touch()
        return token


class Confirm(BaseModel):
    """A JSON body, so a cross-site form cannot send these requests without a preflight."""

    model_config = ConfigDict(extra="forbid")

    confirm: Literal[True]


def add_token_routes(app: FastAPI, policy: AccessPolicy, token_file: Path | None) -> None:
    if token_file is None:
        return
    keeper = TokenFile(token_file)

    def administrator_only(request: Request) -> None:
        peer = request.client.host if request.client is not None else None
        if peer not in policy.trusted_peers:
            raise ApiError(403, "The token is shown and replaced only on the page in Home Assistant's sidebar", "ingress_only")

    @app.get("/v1/admin/token", include_in_schema=False)
    async def token_state(request: Request) -> dict:
        """Whether the token was shown already (then only a new one can be shown)."""
        administrator_only(request)
        return {"shown": await asyncio.to_thread(keeper.shown)}

    @app.post("/v1/admin/token/reveal", include_in_schema=False)
    async def reveal(request: Request, confirmation: Confirm) -> dict:
        administrator_only(request)
        token = await asyncio.to_thread(keeper.reveal)
        if token is None:
            raise ApiError(409, "The token was shown once already; make a new one to see a token again", "token_shown")
        return {"token": token}

    @app.post("/v1/admin/token/rotate", include_in_schema=False)
    async def rotate(request: Request, confirmation: Confirm) -> dict:
        """A new token; the old one stops working at once."""
        administrator_only(request)
        policy.token = await asyncio.to_thread(keeper.rotate)
        return {"token": policy.token}
