"""torch → ONNX exporter for the official IndexTTS-2 checkpoints (the `export` extra).

Nothing here is imported by the serving runtime. `wyoming-indextts export ...` lands in
`wyoming_indextts.export.cli.main`.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def official_package() -> None:
    """Make the official model code (`indextts2-inference`) importable without its `__init__`.

    The package's `indextts/__init__.py` imports `infer_v2`, which imports torchaudio (no CPU
    build for torch 2.13 here) and hub download helpers. The model modules themselves need none
    of that, so register `indextts` as a bare package whose submodules load from the installed
    folder. Idempotent; safe to call from tests and from the acoustic exporter alike.
    """
    existing = sys.modules.get("indextts")
    if existing is not None:
        return
    spec = importlib.util.find_spec("indextts")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the official IndexTTS-2 model code is missing: install the export extra and "
            "`pip install --no-deps indextts2-inference==2.1.1`"
        )
    module = types.ModuleType("indextts")
    module.__path__ = list(spec.submodule_search_locations)
    module.__file__ = spec.origin
    sys.modules["indextts"] = module
