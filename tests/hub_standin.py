"""A stand-in for the Hugging Face Hub on 127.0.0.1, with the real hub's URL layout and headers
(as huggingface_hub's hf_api.py and file_download.py read them):

- `GET /api/models/{repo}/revision/{rev}[?blobs=true]`: model info JSON, `sha` and `siblings`
  (`rfilename`, `size`, `blobId`, and `lfs` {`size`, `sha256`, `pointerSize`} for LFS files);
  an unknown repository answers 404 with `X-Error-Code: RepoNotFound`.
- `HEAD|GET /{repo}/resolve/{rev}/{path}`: a regular file answers 200 with `ETag` (its git blob
  id), `X-Repo-Commit`, `Content-Length`, `Accept-Ranges`; an LFS file answers 302 to the
  "CDN" (`/cdn/{sha256}`) with `X-Linked-Size`, `X-Linked-Etag`, `X-Repo-Commit`, as the hub
  does; a missing file 404 with `X-Error-Code: EntryNotFound`.
- `GET /cdn/{sha256}` and the regular-file GET honour `Range: bytes=N-[M]` (206 +
  `Content-Range`).

Switches (thread-safe):

    hub.cut_once(path)            the next GET of `path` sends all headers, half the body, then
                                  closes the socket (an interrupted transfer)
    hub.fail(path, status)        every GET of `path` answers `status` until hub.heal(path)
    hub.corrupt(path, on=True)    serve different bytes than the metadata's hash says
    hub.listed_size[repo, name]   the size the model info lists instead of the real one

Records: `hub.requests` -> list of (method, path, Range header or None, status).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".model")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    content: bytes
    lfs: bool

    @cached_property
    def blob_id(self) -> str:
        if self.lfs:  # the git object is the LFS pointer file
            return hashlib.sha1(self.pointer).hexdigest()  # noqa: S324 - git object id
        return hashlib.sha1(b"blob %d\0" % len(self.content) + self.content).hexdigest()  # noqa: S324

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.content)}\n".encode()


class HubStandIn:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, HubFile]] = {}
        self.requests: list[tuple[str, str, str | None, int]] = []
        self._cut: set[str] = set()
        self._fail: dict[str, int] = {}
        self._corrupt: set[str] = set()
        self.listed_size: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_file(self, repo: str, name: str, content: bytes, lfs: bool | None = None) -> None:
        lfs = name.endswith(LFS_SUFFIXES) if lfs is None else lfs
        self.repos.setdefault(repo, {})[name] = HubFile(content, lfs)

    def add_folder(self, repo: str, folder: Path, prefix: str = "") -> None:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                self.add_file(repo, prefix + path.relative_to(folder).as_posix(), path.read_bytes())

    def cut_once(self, path: str) -> None:
        with self._lock:
            self._cut.add(path)

    def fail(self, path: str, status: int) -> None:
        with self._lock:
            self._fail[path] = status

    def heal(self, path: str) -> None:
        with self._lock:
            self._fail.pop(path, None)

    def corrupt(self, path: str, on: bool = True) -> None:
        with self._lock:
            (self._corrupt.add if on else self._corrupt.discard)(path)

    def ranges(self, path: str) -> list[str]:
        """Range headers of the GETs of `path` (a file's resolve path or its CDN path)."""
        return [r for method, p, r, _ in self.requests if method == "GET" and p == path and r]

    def cdn_path(self, repo: str, name: str) -> str:
        return f"/cdn/{self.repos[repo][name].sha256}"

    def __enter__(self) -> HubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(hub: HubStandIn) -> type[BaseHTTPRequestHandler]:
    api = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)$")
    resolve = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<name>.+)$")
    cdn = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:  # noqa: N802
            self._route(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._route(body=True)

        def _route(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            if m := api.match(path):
                return self._model_info(m["repo"], body, path)
            if m := resolve.match(path):
                return self._resolve(m["repo"], m["name"], body, path)
            if m := cdn.match(path):
                for files in hub.repos.values():
                    for name, file in files.items():
                        if file.sha256 == m["sha"]:
                            return self._content(file, path, body)
            self._status(404, path, body, {"X-Error-Code": "EntryNotFound"})

        def _model_info(self, repo: str, body: bool, path: str) -> None:
            files = hub.repos.get(repo)
            if files is None:
                return self._status(404, path, body, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            siblings = []
            for name, file in sorted(files.items()):
                size = hub.listed_size.get((repo, name), len(file.content))
                sibling = {"rfilename": name, "size": size, "blobId": file.blob_id}
                if file.lfs:
                    sibling["lfs"] = {"size": size, "sha256": file.sha256, "pointerSize": len(file.pointer)}
                siblings.append(sibling)
            data = json.dumps({"_id": repo, "id": repo, "modelId": repo, "sha": COMMIT, "private": False, "siblings": siblings}).encode()
            self._send(200, path, {"Content-Type": "application/json", "Content-Length": str(len(data))}, data if body else b"")

        def _resolve(self, repo: str, name: str, body: bool, path: str) -> None:
            files = hub.repos.get(repo)
            if files is None:
                return self._status(404, path, body, {"X-Error-Code": "RepoNotFound"})
            file = files.get(name)
            if file is None:
                return self._status(404, path, body, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})
            if file.lfs:
                headers = {
                    "Location": f"{hub.endpoint}/cdn/{file.sha256}",
                    "X-Linked-Size": str(len(file.content)),
                    "X-Linked-Etag": f'"{file.sha256}"',
                    "ETag": f'"{file.blob_id}"',
                    "X-Repo-Commit": COMMIT,
                    "Content-Length": "0",
                }
                return self._send(302, path, headers, b"")
            self._content(file, path, body, {"ETag": f'"{file.blob_id}"', "X-Repo-Commit": COMMIT})

        def _content(self, file: HubFile, path: str, body: bool, extra: dict[str, str] | None = None) -> None:
            with hub._lock:
                failing = hub._fail.get(path) if body else None
                cut = body and path in hub._cut
                hub._cut.discard(path)
                content = file.content
                if path in hub._corrupt:
                    content = bytes(b ^ 0xFF for b in content[:8]) + content[8:]
            if failing and not cut:
                return self._status(failing, path, body)
            headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream", **(extra or {})}
            status, start, end = 200, 0, len(content)
            wanted = self.headers.get("Range")
            if wanted and (m := re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())):
                start = int(m[1])
                end = int(m[2]) + 1 if m[2] else len(content)
                if start >= len(content):
                    return self._status(416, path, body, {"Content-Range": f"bytes */{len(content)}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(content)}"
            part = content[start:end]
            headers["Content-Length"] = str(len(part))
            if cut:
                self._record(status, path)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(part[: len(part) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self._send(status, path, headers, part if body else b"")

        def _status(self, status: int, path: str, body: bool, headers: dict[str, str] | None = None) -> None:
            data = json.dumps({"error": f"status {status}"}).encode()
            self._send(status, path, {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}, data if body else b"")

        def _record(self, status: int, path: str) -> None:
            with hub._lock:
                hub.requests.append((self.command, path, self.headers.get("Range"), status))

        def _send(self, status: int, path: str, headers: dict[str, str], data: bytes) -> None:
            self._record(status, path)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if data:
                self.wfile.write(data)

    return Handler
