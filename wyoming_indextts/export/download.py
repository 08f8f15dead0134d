"""Resumable, verified downloads of the files in `sources.py` from the Hugging Face Hub or a
mirror of it (`--hf-endpoint`, HF_ENDPOINT).

Built from huggingface_hub's own pieces (`HfApi.model_info` for the file list, sizes and
hashes; `hf_hub_url` and `http_get` for the transfer, with its progress bar and its in-run
retries with a Range request) rather than `hf_hub_download`, because since huggingface_hub 1.x
`hf_hub_download` deletes a partial file when a run fails: a 3 GB checkpoint cut at 90 % would
start again from zero. Here the partial file stays beside its target (`.NAME.HASH.part`) and
the next run asks for the rest with a Range request. Every file is checked against the hub's
metadata before it takes its name: sha256 for LFS files, the git blob id for the others.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .sources import HubSource

_LOGGER = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
VERIFIED_FILE = ".verified.json"
"""Per source folder: file name -> hash checked after its download (so reruns skip rehashing)."""


class DownloadError(Exception):
    """A download problem, said in one line a person can act on."""


@dataclass(frozen=True)
class PlannedFile:
    source: HubSource
    name: str
    size: int
    digest: str
    """sha256 (LFS files) or git blob id (sha1 of "blob SIZE\\0" + content)."""
    lfs: bool
    commit: str
    folder: Path

    @property
    def target(self) -> Path:
        return self.folder / self.name

    @property
    def partial(self) -> Path:
        return self.target.with_name(f".{self.target.name}.{self.digest[:16]}.part")

    @property
    def label(self) -> str:
        return f"{self.source.repo_id}/{self.name}"


def human_size(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def endpoint_from(option: str | None) -> str:
    return (option or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def plan_downloads(sources: Iterable[HubSource], root: Path, endpoint: str) -> list[PlannedFile]:
    """Ask the hub for each repository's file list (sizes, hashes, commit); fail on the first
    repository or file it does not have."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint)
    planned: list[PlannedFile] = []
    for source in sources:
        try:
            info = api.model_info(source.repo_id, revision=source.revision, files_metadata=True)
        except Exception as err:  # noqa: BLE001 - mapped to one line below
            raise DownloadError(explain(err, source.repo_id, endpoint)) from err
        siblings = {sibling.rfilename: sibling for sibling in info.siblings or []}
        for name in source.files:
            sibling = siblings.get(name)
            if sibling is None:
                raise DownloadError(
                    f"{source.repo_id}: has no file {name} at revision {source.revision} on {endpoint} (404)"
                )
            lfs = sibling.lfs is not None
            size = sibling.lfs.size if sibling.lfs is not None else sibling.size
            digest = sibling.lfs.sha256 if sibling.lfs is not None else sibling.blob_id
            if size is None or not digest:
                raise DownloadError(f"{endpoint}: gave no size or hash for {source.repo_id}/{name}; is it a Hub?")
            planned.append(PlannedFile(source, name, int(size), digest, lfs, str(info.sha), root / source.key))
    return planned


def is_done(item: PlannedFile) -> bool:
    if not item.target.is_file() or item.target.stat().st_size != item.size:
        return False
    return _verified(item.folder).get(item.name) == item.digest


def bytes_missing(item: PlannedFile) -> int:
    if is_done(item):
        return 0
    have = item.partial.stat().st_size if item.partial.is_file() else 0
    return max(item.size - have, 0)


def check_space(planned: list[PlannedFile], root: Path, reserve: int = 0) -> None:
    """Refuse to start when the downloads (plus `reserve`, e.g. the export) cannot fit."""
    need = sum(bytes_missing(item) for item in planned) + reserve
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if need > free:
        raise DownloadError(
            f"not enough disk space in {root}: {human_size(need)} needed, {human_size(free)} free"
        )


def fetch(item: PlannedFile, endpoint: str) -> Path:
    """Download one file (resuming its partial file), verify it, move it into place."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    if is_done(item):
        return item.target
    item.target.parent.mkdir(parents=True, exist_ok=True)
    for stale in item.target.parent.glob(f".{item.target.name}.*.part"):
        if stale != item.partial:  # a partial file of another version of the file
            stale.unlink()
    if item.target.exists():
        item.target.unlink()
    have = item.partial.stat().st_size if item.partial.is_file() else 0
    if have > item.size:
        item.partial.unlink()
        have = 0
    url = hf_hub_url(item.source.repo_id, item.name, revision=item.commit, endpoint=endpoint)
    if have:
        _LOGGER.info("%s: resuming at %s of %s", item.label, human_size(have), human_size(item.size))
    try:
        with item.partial.open("ab") as out:
            http_get(
                url,
                out,
                resume_size=have,
                headers=build_hf_headers(),
                expected_size=item.size,
                displayed_filename=f"{item.source.key}/{item.name}",
            )
    except Exception as err:  # noqa: BLE001 - mapped to one line below
        raise DownloadError(explain(err, item.label, endpoint)) from err
    actual = file_digest(item.partial, lfs=item.lfs)
    if actual != item.digest:
        item.partial.unlink()
        kind = "sha256" if item.lfs else "git blob id"
        raise DownloadError(
            f"{item.label}: checksum mismatch ({kind} {actual[:12]}…, the hub says {item.digest[:12]}…); "
            "the download was deleted, run setup again"
        )
    os.replace(item.partial, item.target)
    verified = _verified(item.folder)
    verified[item.name] = item.digest
    (item.folder / VERIFIED_FILE).write_text(json.dumps(verified, indent=1, sort_keys=True) + "\n")
    return item.target


def file_digest(path: Path, lfs: bool) -> str:
    """sha256 of the content (what the hub lists for LFS files) or the git blob id."""
    digest = hashlib.sha256() if lfs else hashlib.sha1()  # noqa: S324 - git's object id, not security
    if not lfs:
        digest.update(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(folder: Path) -> dict[str, str]:
    try:
        return json.loads((folder / VERIFIED_FILE).read_text())
    except (OSError, ValueError):
        return {}


def explain(err: BaseException, what: str, endpoint: str) -> str:
    """One line for a failed hub call or transfer."""
    import httpx
    from huggingface_hub import errors

    mirror_hint = "check the network, or use a mirror with --hf-endpoint / HF_ENDPOINT"
    if isinstance(err, errors.GatedRepoError):
        return f"{what}: gated on {endpoint}; accept its terms on the model page and log in (HF_TOKEN)"
    if isinstance(err, errors.RepositoryNotFoundError):
        return f"{what}: repository not found on {endpoint} (404)"
    if isinstance(err, errors.RevisionNotFoundError):
        return f"{what}: revision not found on {endpoint} (404)"
    if isinstance(err, errors.EntryNotFoundError):
        return f"{what}: not found on {endpoint} (404)"
    if isinstance(err, errors.OfflineModeIsEnabled):
        return f"{what}: HF_HUB_OFFLINE is set; unset it to download"
    if isinstance(err, errors.HfHubHTTPError) and err.response is not None:
        return f"{what}: {endpoint} answered HTTP {err.response.status_code}; run setup again later, or {mirror_hint}"
    if isinstance(err, (httpx.TransportError, ConnectionError)):
        return f"{what}: cannot reach {endpoint} ({_first_line(err)}); {mirror_hint}"
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"{what}: disk full while writing ({err.filename or 'download'}); free space and run setup again (it resumes)"
    if isinstance(err, OSError) and "Consistency check failed" in str(err):
        return f"{what}: the connection ended before the whole file came; run setup again (it resumes)"
    return f"{what}: {type(err).__name__}: {_first_line(err)}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
