"""HTTP API and web page: the same synthesizer, voices and cache as the Wyoming server.

Needs the `[http]` extra (FastAPI, uvicorn, prometheus-client, python-multipart)."""

from .app import HttpSettings, create_app
from .server import HttpAddress, HttpServer, parse_http_uri

__all__ = ["HttpAddress", "HttpServer", "HttpSettings", "create_app", "parse_http_uri"]
