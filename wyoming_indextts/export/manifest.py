"""`manifest.json` of an exported model folder (read back by engines/indextts/model.py)."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..engines.indextts.format import DEFAULT_MODEL, FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME, MODEL_FIELD
from ..engines.indextts.model import sha256_file

_ONNX_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
}


def graph_io(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Inputs and outputs of an ONNX graph: name, element type and shape (ints or axis names)."""
    import onnx

    model = onnx.load(os.fspath(path), load_external_data=False)

    def describe(values) -> list[dict[str, Any]]:
        described = []
        for value in values:
            tensor = value.type.tensor_type
            shape: list[Any] = []
            for dim in tensor.shape.dim:
                if dim.HasField("dim_value"):
                    shape.append(int(dim.dim_value))
                elif dim.HasField("dim_param"):
                    shape.append(dim.dim_param)
                else:
                    shape.append(None)
            described.append(
                {"name": value.name, "dtype": _ONNX_TYPES.get(tensor.elem_type, str(tensor.elem_type)), "shape": shape}
            )
        return described

    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    return describe(inputs), describe(model.graph.output)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("wyoming-indextts", "indextts2-inference", "torch", "transformers", "onnx"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def write_manifest(
    out_dir: Path,
    graphs: Mapping[str, str],
    source: Mapping[str, Any],
    model: str = DEFAULT_MODEL,
) -> Path:
    """Write `manifest.json` for everything in `out_dir` (every file is hashed).

    `graphs` maps graph names (what the runtime asks for) to file names relative to `out_dir`;
    `source` records where the export came from (checkpoint hashes, options); `model` names
    the model family (a `format.KNOWN_MODELS` entry).
    """
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(out_dir).as_posix()
        if rel == MANIFEST_NAME:
            continue
        files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    graph_entries: dict[str, Any] = {}
    for name, file_name in sorted(graphs.items()):
        if file_name not in files:
            raise FileNotFoundError(f"graph {name}: {out_dir / file_name} was not written")
        inputs, outputs = graph_io(out_dir / file_name)
        graph_entries[name] = {"file": file_name, "inputs": inputs, "outputs": outputs}
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        MODEL_FIELD: model,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "exporter": _versions(),
        "source": dict(source),
        "graphs": graph_entries,
        "files": files,
    }
    path = out_dir / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
