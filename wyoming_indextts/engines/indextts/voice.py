"""Voices from a folder of clips: discovery, clip checks, conditioning, the on-disk store.

``--voices-dir`` holds ``NAME.wav`` and, optionally, ``NAME.yaml``::

    description: Warm voice for announcements
    languages: [en]          # default: [zh, en]
    speed: 1.1               # IndexTTS-2.5 only: speech rate (default: --indextts-speed)

A voice's conditioning — everything synthesis needs from the clip — is computed once per
(clip sha256, model manifest sha256) and stored as one ``.npz`` in the conditioning folder
(written to a temporary name and renamed, so a crash never leaves half a file that is read
back). It holds:

* ``speaker_latents`` (1, 32, D): the GPT speaker conditioning (conformer + perceiver);
* ``emovec_speaker`` / ``emovec_emotion`` (1, D): ``get_emovec`` of the clip's features as
  the speaker prompt and as the emotion prompt (infer_v2 loads the emotion clip separately,
  at 16 kHz directly, so the two differ slightly even for one clip);
* ``style`` (1, 192), ``prompt_condition`` (1, L, C), ``ref_mel`` (1, 80, L): the acoustic
  prompt for s2mel (see ``conditioning.py``).

Audio preparation follows infer_v2: the speaker clip is read as ``librosa.load`` reads it
(mono mean, soxr HQ to 22050 Hz, length fixed to ``ceil(n * ratio)``), cut to 15 s, and
taken to 16 kHz with torchaudio's ``Resample`` (Hann-windowed sinc, width 6, roll-off 0.99);
the emotion clip is the same file read at 16 kHz by ``librosa.load``, cut to 15 s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .clip_reader import ClipProblem, read_mono
from .format import MAX_PROMPT_SECONDS, SAMPLE_RATE, SEMANTIC_SAMPLE_RATE

_LOGGER = logging.getLogger(__name__)

CONDITIONING_FORMAT = 1
"""Bumped when the stored conditioning changes meaning; older files are then recomputed."""

DEFAULT_LANGUAGES = ("zh", "en")
MIN_CLIP_SECONDS = 1.0
MAX_CLIP_SECONDS = 30.0
SILENCE_PEAK = 10 ** (-60 / 20)
"""A clip whose loudest sample stays under -60 dBFS is treated as silent."""

SPEAKER_RATE = SAMPLE_RATE
"""The speaker prompt's rate: the reference mel is taken at the output rate."""
SEMANTIC_RATE = SEMANTIC_SAMPLE_RATE

CONDITIONING_ARRAYS = (
    "speaker_latents",
    "emovec_speaker",
    "emovec_emotion",
    "style",
    "prompt_condition",
    "ref_mel",
)


class VoiceError(Exception):
    """A voice cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class VoiceSpec:
    """One voice found in the voices folder."""

    name: str
    clip: Path
    description: str = ""
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    clip_sha256: str = ""
    speed: float | None = None
    """Speech rate from NAME.yaml (IndexTTS-2.5's duration factor is 1 / speed); None: the
    engine's option."""


@dataclass(frozen=True)
class VoiceConditioning:
    """Everything synthesis needs from one clip (see the module docstring)."""

    speaker_latents: np.ndarray
    emovec_speaker: np.ndarray
    emovec_emotion: np.ndarray
    style: np.ndarray
    prompt_condition: np.ndarray
    ref_mel: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in CONDITIONING_ARRAYS}


# -- discovery ----------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


MIN_SPEED, MAX_SPEED = 0.5, 2.0
"""Speech rates a voice may ask for (the official 2.5 code saturates above about 1.28)."""


def _read_voice_yaml(path: Path) -> tuple[str, tuple[str, ...], float | None]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise VoiceError(f"{path}: unreadable voice settings ({str(err).splitlines()[0]})") from err
    if not isinstance(data, dict):
        raise VoiceError(f"{path}: expected a mapping with description and languages")
    description = data.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise VoiceError(f"{path}: description must be text")
    languages = data.get("languages", list(DEFAULT_LANGUAGES))
    if isinstance(languages, str):
        languages = [languages]
    if not isinstance(languages, list) or not languages or not all(isinstance(x, str) and x.strip() for x in languages):
        raise VoiceError(f"{path}: languages must be a non-empty list of language codes")
    speed = data.get("speed")
    if speed is not None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not MIN_SPEED <= speed <= MAX_SPEED:
            raise VoiceError(f"{path}: speed must be a number from {MIN_SPEED} to {MAX_SPEED} (1 is the model's own pace)")
        speed = float(speed)
    return description.strip(), tuple(x.strip() for x in languages), speed


def discover_voices(voices_dir: Path) -> tuple[list[VoiceSpec], list[str]]:
    """Voices of a folder (sorted by name) and the problems found (one message per skipped voice)."""
    voices: list[VoiceSpec] = []
    problems: list[str] = []
    if not voices_dir.is_dir():
        return voices, [f"{voices_dir}: voices folder not found"]
    for clip in sorted(voices_dir.glob("*.wav")):
        if not clip.is_file():
            continue
        name = clip.stem
        settings = clip.with_suffix(".yaml")
        try:
            description, languages, speed = _read_voice_yaml(settings) if settings.is_file() else ("", DEFAULT_LANGUAGES, None)
            digest = sha256_file(clip)
        except VoiceError as err:
            problems.append(str(err))
            continue
        except OSError as err:
            problems.append(f"{clip}: unreadable ({err.strerror or err})")
            continue
        voices.append(VoiceSpec(name, clip, description, languages, digest, speed))
    return voices, problems


# -- audio --------------------------------------------------------------------------------------


def read_clip(path: Path, max_seconds: float = MAX_CLIP_SECONDS) -> tuple[np.ndarray, int]:
    """The clip as float32 mono (channel mean, as librosa) at its own rate; VoiceError if
    unusable. Read with the uploads' bounded reader: a clip whose header promises more than
    `max_seconds`, or more audio than any voice clip, is refused before it is decoded."""
    try:
        return read_mono(path, max_seconds)
    except ClipProblem as problem:
        raise VoiceError(f"{path}: {problem}") from None


def check_clip(path: Path, samples: np.ndarray, rate: int, min_seconds: float) -> None:
    seconds = samples.shape[0] / rate
    if seconds < min_seconds:
        raise VoiceError(f"{path}: {seconds:.2f} s is too short; a voice clip needs at least {min_seconds:g} s of speech")
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise VoiceError(f"{path}: is silent; record the voice again")


def librosa_resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``librosa.resample(res_type="soxr_hq", fix=True)``: soxr HQ, length ceil(n * ratio)."""
    if rate == target:
        return samples
    import soxr

    out = soxr.resample(samples, rate, target, quality="soxr_hq")
    size = int(np.ceil(samples.shape[0] * float(target) / rate))
    if out.shape[0] > size:
        out = out[:size]
    elif out.shape[0] < size:
        out = np.pad(out, (0, size - out.shape[0]))
    return np.asarray(out, dtype=np.float32)


@lru_cache(maxsize=8)
def _sinc_kernel(orig: int, new: int, lowpass_filter_width: int = 6, rolloff: float = 0.99) -> tuple[np.ndarray, int]:
    """torchaudio's ``_get_sinc_resample_kernel`` (sinc_interp_hann, dtype None) in numpy."""
    base_freq = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base_freq)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None, :] / orig
    # torch: arange(0, -new, -1) (int64) / new -> float32, then promoted to float64 by idx
    t = (np.arange(0, -new, -1, dtype=np.int64) / new).astype(np.float32).astype(np.float64)[:, None] + idx
    t = t * base_freq
    t = np.clip(t, -lowpass_filter_width, lowpass_filter_width)
    window = np.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    scale = base_freq / orig
    with np.errstate(invalid="ignore", divide="ignore"):
        kernels = np.where(t == 0, 1.0, np.sin(t) / t)
    kernels = (kernels * window * scale).astype(np.float32)
    kernels.setflags(write=False)
    return kernels, width


def torchaudio_resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``torchaudio.transforms.Resample(rate, target)`` (default arguments) for a mono signal."""
    if rate == target:
        return samples
    gcd = math.gcd(int(rate), int(target))
    orig, new = int(rate) // gcd, int(target) // gcd
    kernels, width = _sinc_kernel(orig, new)
    length = samples.shape[0]
    padded = np.pad(np.asarray(samples, dtype=np.float32), (width, width + orig))
    taps = kernels.shape[1]
    blocks = np.lib.stride_tricks.sliding_window_view(padded, taps)[::orig]
    out = (blocks.astype(np.float64) @ kernels.T.astype(np.float64)).astype(np.float32).reshape(-1)
    target_length = int(math.ceil(new * length / orig))
    return out[:target_length]


@dataclass(frozen=True)
class ClipAudio:
    """The three signals infer_v2 derives from a reference clip."""

    speaker_22k: np.ndarray
    speaker_16k: np.ndarray
    emotion_16k: np.ndarray


def prepare_clip_audio(samples: np.ndarray, rate: int, prompt_seconds: float = MAX_PROMPT_SECONDS) -> ClipAudio:
    """``_load_and_cut_audio`` for the speaker (22050 Hz) and the emotion (16 kHz) prompts."""
    speaker = librosa_resample(samples, rate, SPEAKER_RATE)[: int(prompt_seconds * SPEAKER_RATE)]
    emotion = librosa_resample(samples, rate, SEMANTIC_RATE)[: int(prompt_seconds * SEMANTIC_RATE)]
    return ClipAudio(
        speaker_22k=speaker,
        speaker_16k=torchaudio_resample(speaker, SPEAKER_RATE, SEMANTIC_RATE),
        emotion_16k=emotion,
    )


# -- the store ----------------------------------------------------------------------------------


class ConditioningStore:
    """Prepared voices on disk, one ``.npz`` per (clip, model)."""

    def __init__(self, directory: Path, model_fingerprint: str) -> None:
        self.directory = Path(directory)
        self.model_fingerprint = model_fingerprint

    def path_for(self, clip_sha256: str) -> Path:
        return self.directory / f"{clip_sha256[:32]}-{self.model_fingerprint[:16]}.npz"

    def load(self, clip_sha256: str) -> VoiceConditioning | None:
        path = self.path_for(clip_sha256)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {name: np.asarray(data[name], dtype=np.float32) for name in CONDITIONING_ARRAYS}
        except (OSError, KeyError, ValueError) as err:
            _LOGGER.warning("%s: unreadable prepared voice (%s); preparing it again", path, err)
            return None
        if (
            meta.get("format") != CONDITIONING_FORMAT
            or meta.get("clip_sha256") != clip_sha256
            or meta.get("model") != self.model_fingerprint
        ):
            _LOGGER.info("%s: prepared for another clip, model or format; preparing it again", path)
            return None
        return VoiceConditioning(**arrays, meta=meta)

    def save(self, clip_sha256: str, conditioning: VoiceConditioning) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(clip_sha256)
        meta = dict(conditioning.meta)
        meta.update({"format": CONDITIONING_FORMAT, "clip_sha256": clip_sha256, "model": self.model_fingerprint})
        fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **conditioning.arrays())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with_suppressed_unlink(tmp_name)
            raise
        return path


def with_suppressed_unlink(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass
