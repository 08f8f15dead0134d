"""Every HTTP error is JSON in OpenAI's shape, `{"error": {"message", "type", "code"}}`, so the
official clients show the message; the message says what to do about it."""

from __future__ import annotations

import json
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import Send


LONE_SURROGATE_ERROR = "string_unicode"
"""pydantic's error type for a string that is not valid Unicode (ours too, see app.py)."""


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers


def error_body(status: int, message: str, code: str) -> dict:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "code": code}}


def error_response(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code), status_code=status, headers=headers)


async def send_json_error(send: Send, status: int, message: str, code: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """The same error from plain ASGI code (middleware, a response that has not started)."""
    body = json.dumps(error_body(status, message, code)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _describe_validation(err: RequestValidationError) -> str:
    parts = []
    for problem in err.errors()[:5]:
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, ApiError)
        return error_response(err.status, err.message, err.code, err.headers)

    async def validation_error(_request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)
        surrogates = [p for p in err.errors() if p.get("type") == LONE_SURROGATE_ERROR]
        if surrogates:  # JSON's \ud800 escape: text no UTF-8 can hold
            where = ".".join(str(p) for p in surrogates[0].get("loc", ()) if p != "body") or "body"
            return error_response(400, f"{where} holds a lone surrogate (a \\ud800-\\udfff escape alone): send valid Unicode", "invalid_text")
        return error_response(422, _describe_validation(err), "invalid_request")

    async def http_error(_request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, HTTPException)
        if err.status_code == 404:
            message = "Not found: see /docs for the endpoints this server offers"
        elif err.status_code == 405:
            message = "Method not allowed on this path: see /docs"
        else:
            message = str(err.detail)
        return error_response(err.status_code, message, "http_error", getattr(err, "headers", None))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
