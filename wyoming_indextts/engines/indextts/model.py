"""The exported model folder: manifest, file verification, arrays and ONNX sessions.

A model folder is what ``wyoming-indextts export`` writes: ONNX graphs, ``.npy`` arrays,
``bpe.model``, ``config.json`` (the values the runtime needs from the official config.yaml)
and ``manifest.json``, which names every other file with its sha256 and size, every graph
with its inputs and outputs, and the hashes of the checkpoints it was made from.

Sessions are created lazily and can be injected (like kokoro-onnx's ``from_session``), so a
caller may bring its own ``onnxruntime.InferenceSession`` objects, providers or options.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..base import EngineError
from ..sessions import providers as session_providers
from ..sessions import session_options as new_session_options
from .format import (
    CONFIG_NAME,
    DEFAULT_MODEL,
    FORMAT_NAME,
    FORMAT_VERSION,
    GPT_GRAPH,
    GPT_INT8_GRAPH,
    KNOWN_MODELS,
    MANIFEST_NAME,
    MODEL_FIELD,
    SpeechParams,
    read_acoustic_params,
)

ARENA_GRAPHS = frozenset({GPT_GRAPH, GPT_INT8_GRAPH})
"""Graphs run many times per sentence, where ONNX Runtime's memory arena saves allocations."""

_LOGGER = logging.getLogger(__name__)

EXPORT_HINT = (
    "re-create the model folder with `wyoming-indextts export --checkpoints DIR --out MODEL_DIR`"
)


class ModelError(EngineError):
    """The model folder cannot be used; the message names the file and what to do."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class GraphInfo:
    name: str
    file: str
    inputs: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i["name"] for i in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o["name"] for o in self.outputs)


@dataclass(frozen=True)
class Manifest:
    format_version: int
    files: Mapping[str, Mapping[str, Any]]
    graphs: Mapping[str, GraphInfo]
    source: Mapping[str, Any]
    raw: Mapping[str, Any] = field(repr=False)
    model: str = DEFAULT_MODEL
    """Which model the folder holds (one of format.KNOWN_MODELS)."""
    sha256: str = ""
    """sha256 of manifest.json itself: identifies the whole model (it covers every file)."""

    @classmethod
    def load(cls, model_dir: Path) -> Manifest:
        path = model_dir / MANIFEST_NAME
        if not model_dir.is_dir():
            raise ModelError(f"{model_dir}: model folder not found; {EXPORT_HINT}")
        if not path.is_file():
            raise ModelError(f"{path}: missing; {EXPORT_HINT}")
        data_bytes = path.read_bytes()
        try:
            data = json.loads(data_bytes)
        except ValueError as err:
            raise ModelError(f"{path}: not valid JSON ({err}); {EXPORT_HINT}") from err
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise ModelError(f"{path}: not a wyoming-indextts model manifest; {EXPORT_HINT}")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(
                f"{path}: manifest format version {version!r} is not supported by this version "
                f"of wyoming-indextts (it reads version {FORMAT_VERSION}); {EXPORT_HINT} using "
                "this version"
            )
        model = data.get(MODEL_FIELD, DEFAULT_MODEL)
        if model not in KNOWN_MODELS:
            raise ModelError(
                f"{path}: holds model {model!r}, which this version of wyoming-indextts does not "
                f"know (it runs {', '.join(KNOWN_MODELS)}); update wyoming-indextts or {EXPORT_HINT}"
            )
        try:
            files = {str(k): dict(v) for k, v in data["files"].items()}
            graphs = {
                str(name): GraphInfo(
                    name=str(name),
                    file=str(g["file"]),
                    inputs=tuple(g["inputs"]),
                    outputs=tuple(g["outputs"]),
                )
                for name, g in data["graphs"].items()
            }
            for name, info in files.items():
                if not isinstance(info.get("sha256"), str) or not isinstance(info.get("size"), int):
                    raise KeyError(name)
        except (KeyError, TypeError, AttributeError) as err:
            raise ModelError(f"{path}: incomplete manifest (bad entry {err}); {EXPORT_HINT}") from err
        return cls(
            format_version=version,
            files=files,
            graphs=graphs,
            source=dict(data.get("source", {})),
            raw=data,
            model=model,
            sha256=hashlib.sha256(data_bytes).hexdigest(),
        )


class IndexTTSModel:
    """An opened, verified model folder, with lazily created ONNX Runtime sessions."""

    def __init__(
        self,
        path: str | Path,
        manifest: Manifest,
        sessions: Mapping[str, Any] | None = None,
        *,
        threads: int = 0,
        providers: list[str] | None = None,
        session_options: Any = None,
    ) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self._sessions: dict[str, Any] = dict(sessions or {})
        self._threads = threads
        self._providers = providers or session_providers()
        self._session_options = session_options
        self._lock = threading.Lock()
        self.created: list[str] = []
        """Names of the graphs this object has created sessions for, in order (not injected ones)."""
        self.config: dict[str, Any] = self._load_config()
        self.speech: SpeechParams = self._load_speech_params()
        """Sample rate, hop and mel frames per code of this folder (acoustic.json)."""

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        verify: bool = True,
        sessions: Mapping[str, Any] | None = None,
        threads: int = 0,
        providers: list[str] | None = None,
        session_options: Any = None,
    ) -> IndexTTSModel:
        """Read the manifest and check every file it lists (presence, size and, with `verify`,
        sha256). Raises ModelError naming the first bad file and what to do about it."""
        model_dir = Path(path)
        manifest = Manifest.load(model_dir)
        for name, info in manifest.files.items():
            file_path = model_dir / name
            if not file_path.is_file():
                raise ModelError(f"{file_path}: missing from the model folder; {EXPORT_HINT}")
            size = file_path.stat().st_size
            if size != info["size"]:
                raise ModelError(
                    f"{file_path}: size {size} does not match the manifest ({info['size']}): the "
                    f"file is damaged or from another export; {EXPORT_HINT}"
                )
            if verify and sha256_file(file_path) != info["sha256"]:
                raise ModelError(
                    f"{file_path}: sha256 does not match the manifest: the file is damaged or "
                    f"from another export; {EXPORT_HINT}"
                )
        for graph in manifest.graphs.values():
            if graph.file not in manifest.files:
                raise ModelError(
                    f"{model_dir / MANIFEST_NAME}: graph {graph.name!r} names {graph.file}, which "
                    f"the manifest does not list; {EXPORT_HINT}"
                )
        if CONFIG_NAME not in manifest.files:
            raise ModelError(f"{model_dir / CONFIG_NAME}: missing from the manifest; {EXPORT_HINT}")
        return cls(
            model_dir,
            manifest,
            sessions,
            threads=threads,
            providers=providers,
            session_options=session_options,
        )

    def _load_config(self) -> dict[str, Any]:
        path = self.path / CONFIG_NAME
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ModelError(f"{path}: unreadable ({err}); {EXPORT_HINT}") from err

    def _load_speech_params(self) -> SpeechParams:
        try:
            return SpeechParams.from_mapping(read_acoustic_params(self.path))
        except (OSError, ValueError, TypeError, AttributeError) as err:
            raise ModelError(f"{self.path}: unreadable acoustic parameters ({err}); {EXPORT_HINT}") from err

    # -- facts ------------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """Identifies the model: the sha256 of its manifest (which hashes every file)."""
        return self.manifest.sha256

    def has_graph(self, name: str) -> bool:
        return name in self.manifest.graphs

    def file(self, name: str) -> Path:
        if name not in self.manifest.files:
            raise ModelError(f"{self.path / name}: not listed in the manifest; {EXPORT_HINT}")
        return self.path / name

    def array(self, name: str, *, mmap: bool = False) -> np.ndarray:
        """A `.npy` file of the folder (`name` with or without the suffix)."""
        file_name = name if name.endswith(".npy") else name + ".npy"
        path = self.file(file_name)
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ModelError(f"{path}: unreadable array ({err}); {EXPORT_HINT}") from err

    # -- sessions ---------------------------------------------------------------------------

    def session(self, name: str) -> Any:
        """The session of graph `name`, created on first use (or the injected one)."""
        with self._lock:
            existing = self._sessions.get(name)
            if existing is not None:
                return existing
            if name not in self.manifest.graphs:
                raise ModelError(
                    f"{self.path / MANIFEST_NAME}: no graph named {name!r}; {EXPORT_HINT}"
                )
            session = self._create_session(self.manifest.graphs[name])
            self._sessions[name] = session
            self.created.append(name)
            return session

    def is_loaded(self, name: str) -> bool:
        return name in self._sessions

    def release(self, name: str) -> None:
        """Drop a session (e.g. the conditioning graphs once voices are prepared)."""
        with self._lock:
            self._sessions.pop(name, None)

    def close(self) -> None:
        with self._lock:
            self._sessions.clear()

    def _create_session(self, graph: GraphInfo) -> Any:
        path = self.path / graph.file
        session = open_session(
            path, graph.name, threads=self._threads, providers=self._providers, options=self._session_options
        )
        names = tuple(i.name for i in session.get_inputs())
        if set(names) != set(graph.input_names):
            raise ModelError(
                f"{path}: inputs {names} differ from the manifest {graph.input_names}; {EXPORT_HINT}"
            )
        _LOGGER.debug("Loaded %s", path)
        return session


def open_session(
    path: Path,
    graph: str,
    *,
    threads: int = 0,
    providers: list[str] | None = None,
    options: Any = None,
) -> Any:
    """An ONNX Runtime session for graph `graph` stored at `path`: the one way this package
    opens a graph (the model folder and `conditioning.directory_sessions` both come here).
    Raises ModelError when ONNX Runtime cannot load the file."""
    import onnxruntime as ort

    if options is None:
        # Only the GPT core, run once per token, keeps an arena; s2mel and BigVGAN run once
        # per sentence on large tensors, and their arenas would hold that memory between
        # sentences (full size, int8 GPT: 1748 instead of 2062 MiB resident after a sentence;
        # the peak inside a sentence, ~2.0-2.1 GiB, is the activations themselves).
        options = new_session_options(threads, arena=graph in ARENA_GRAPHS)
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers or session_providers())
    except Exception as err:  # noqa: BLE001 - onnxruntime raises several types
        raise ModelError(f"{path}: ONNX Runtime cannot load it ({err}); {EXPORT_HINT}") from err
