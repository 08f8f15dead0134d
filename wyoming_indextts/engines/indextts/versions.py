"""The one place serving tells IndexTTS-2 from IndexTTS-2.5: the model folder's manifest picks
the pipeline, and everything else speaks through the `Pipeline` interface."""

from __future__ import annotations

from typing import Any

from .format import INDEXTTS_25
from .model import IndexTTSModel
from .options import IndexTTSOptions
from .pipeline import Pipeline
from .pipeline25 import Pipeline25


def open_pipeline(model: IndexTTSModel, options: IndexTTSOptions, frontend: Any = None) -> Pipeline:
    """The pipeline of `model`'s version (ModelError for options it refuses or graphs it lacks)."""
    kind = Pipeline25 if model.manifest.model == INDEXTTS_25 else Pipeline
    return kind(model, options, frontend)
