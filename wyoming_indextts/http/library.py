"""Voices added and removed over HTTP: an uploaded clip is checked, trimmed and resampled,
written into `--voices-dir` atomically, and prepared by the IndexTTS engine in a worker thread;
the catalogue then lists it (Wyoming's `describe` too) without a restart.

Names are a closed alphabet, so a name is always one file in the voices folder and never a
path; a name any voice already has (any engine, any letter case) is refused, so no upload
replaces another voice's files.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from ..engines.indextts import IndexTTSEngine
from ..engines.indextts.clip_reader import UPLOAD_FORMATS, ClipProblem, read_mono
from ..engines.indextts.format import MAX_PROMPT_SECONDS
from ..engines.indextts.voice import MIN_CLIP_SECONDS, SILENCE_PEAK, SPEAKER_RATE
from ..engines.indextts.voicing import speech_problem
from ..voices import VoiceCatalogue
from .errors import ApiError

_LOGGER = logging.getLogger(__name__)

VOICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}([_-][A-Za-z]{2,4})?")
PROBLEM_STATUS = {
    "unreadable": (415, "bad_audio"),
    "format": (415, "bad_audio"),
    "invalid": (415, "bad_audio"),
    "empty": (415, "bad_audio"),
    "too_long": (413, "too_long"),
    "too_large": (413, "too_large"),
}
"""The HTTP status and error code of each `ClipProblem` kind."""
MAX_DESCRIPTION_CHARS = 200
TRIM_PEAK = 10 ** (-40 / 20)
"""Leading and trailing audio quieter than -40 dBFS is cut: silence teaches the model nothing."""


@dataclass
class UploadLimits:
    max_bytes: int = 20 << 20
    max_seconds: float = 120.0
    """Longest clip accepted before trimming; the model uses its first 15 s of speech."""


@dataclass
class Preparation:
    name: str
    state: str
    """checking → preparing → ready, or failed."""
    message: str = ""
    seconds: float | None = None
    """Length of the stored clip after trimming."""
    started: float = 0.0

    def public(self) -> dict[str, object]:
        return {"name": self.name, "state": self.state, "message": self.message, "seconds": self.seconds}


class VoiceLibrary:
    def __init__(self, engine: IndexTTSEngine, catalogue: VoiceCatalogue, limits: UploadLimits | None = None) -> None:
        if engine.voices_dir is None:
            raise ValueError("the IndexTTS engine has no voices folder")
        self.engine = engine
        self.catalogue = catalogue
        self.limits = limits or UploadLimits()
        self.voices_dir = engine.voices_dir.resolve()
        self.preparations: dict[str, Preparation] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- checks -------------------------------------------------------------------------------

    def _clip_path(self, name: str, suffix: str) -> Path:
        if not VOICE_NAME.fullmatch(name):
            raise ApiError(
                400, "voice name: use 1-48 letters, digits, '-' or '_', starting with a letter or digit", "bad_voice_name"
            )
        path = (self.voices_dir / f"{name}{suffix}").resolve()
        if path.parent != self.voices_dir:  # cannot happen with the alphabet above; kept as the invariant
            raise ApiError(400, "voice name leads outside the voices folder", "bad_voice_name")
        return path

    def _check_new_name(self, name: str) -> None:
        self._clip_path(name, ".wav")
        taken = {voice.name.lower() for voice in self.catalogue.voices()}
        taken |= {path.stem.lower() for path in self.voices_dir.iterdir() if path.suffix in (".wav", ".yaml")}
        if name.lower() in taken or name in self.preparations and self.preparations[name].state in ("checking", "preparing"):
            raise ApiError(409, f"a voice named {name!r} already exists: choose another name or delete it first", "voice_exists")

    @staticmethod
    def _languages(text: str) -> list[str]:
        codes = [part.strip() for part in re.split(r"[,\s]+", text) if part.strip()]
        if not codes or len(codes) > 8 or not all(LANGUAGE_CODE.fullmatch(code) for code in codes):
            raise ApiError(400, "languages: 1 to 8 codes such as 'zh, en' or 'en_US'", "bad_languages")
        return codes

    # -- adding -------------------------------------------------------------------------------

    async def add(self, name: str, description: str, languages: str, clip: IO[bytes]) -> Preparation:
        """Check and store the clip now (errors are the client's); prepare it in the background."""
        description = description.strip()
        if len(description) > MAX_DESCRIPTION_CHARS or any(ord(c) < 32 for c in description):
            raise ApiError(400, f"description: one line of at most {MAX_DESCRIPTION_CHARS} characters", "bad_description")
        codes = self._languages(languages)
        async with self._lock:
            self._check_new_name(name)
            samples = await asyncio.to_thread(usable_clip, clip, self.limits)
            await asyncio.to_thread(self._write_voice, name, description, codes, samples)
            job = Preparation(name, "preparing", seconds=round(len(samples) / SPEAKER_RATE, 2), started=time.monotonic())
            self.preparations[name] = job
        self._in_background(self._prepare(job))
        return job

    def _write_voice(self, name: str, description: str, languages: list[str], samples: np.ndarray) -> None:
        import soundfile as sf
        import yaml

        settings = yaml.safe_dump({"description": description, "languages": languages}, allow_unicode=True).encode()
        # Settings first: discovery keys on the clip, so the voice appears whole or not at all.
        _write_atomically(self._clip_path(name, ".yaml"), lambda fh: fh.write(settings))
        _write_atomically(self._clip_path(name, ".wav"), lambda fh: sf.write(fh, samples, SPEAKER_RATE, format="WAV", subtype="PCM_16"))

    async def _prepare(self, job: Preparation) -> None:
        try:
            problems = await asyncio.to_thread(self.engine.reload_voices)
        except Exception as err:  # noqa: BLE001 - reported to the user through the job
            _LOGGER.exception("Preparing voice %s failed", job.name)
            job.state, job.message = "failed", f"{type(err).__name__}: {err}"
            return
        if any(voice.name == job.name for voice in self.engine.voices()):
            job.state = "ready"
            job.message = f"prepared in {time.monotonic() - job.started:.1f} s"
            _LOGGER.info("Voice %s uploaded and %s", job.name, job.message)
            return
        mine = [problem for problem in problems if f"{job.name}.wav" in problem or f"{job.name}.yaml" in problem]
        job.state, job.message = "failed", "; ".join(mine) or "the engine did not accept the clip"
        # Leave no clip behind that would fail again at every start.
        await asyncio.to_thread(self._remove_files, job.name)

    # -- removing -----------------------------------------------------------------------------

    async def delete(self, name: str) -> None:
        async with self._lock:
            wav = self._clip_path(name, ".wav")
            if not wav.is_file():
                raise ApiError(404, f"no uploaded or folder voice named {name!r}: see /v1/voices", "no_such_voice")
            if name == self.catalogue.default_voice_name:
                raise ApiError(409, f"{name!r} is the default voice (--voice): start with another default first", "default_voice")
            await asyncio.to_thread(self._remove_files, name)
            self.preparations.pop(name, None)
            await asyncio.to_thread(self.engine.reload_voices)

    def _remove_files(self, name: str) -> None:
        for suffix in (".wav", ".yaml"):
            try:
                self._clip_path(name, suffix).unlink()
            except FileNotFoundError:
                pass

    # -- status -------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        counts = {"preparing": 0, "ready": 0, "failed": 0}
        for job in self.preparations.values():
            counts[job.state] = counts.get(job.state, 0) + 1
        return counts

    def _in_background(self, coroutine) -> None:  # noqa: ANN001 - a coroutine
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for running preparations (at shutdown, and in tests)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def usable_clip(clip: IO[bytes], limits: UploadLimits) -> np.ndarray:
    """The upload as mono speech at the model's rate, trimmed to what the model uses.

    Refused from its header when decoding would cost too much, then decoded in blocks and
    resampled as it streams (`read_mono`): checking any upload holds a few MB, not the file's
    decoded size."""
    try:
        samples, _ = read_mono(clip, limits.max_seconds, UPLOAD_FORMATS, SPEAKER_RATE)
    except ClipProblem as problem:
        status, code = PROBLEM_STATUS[problem.kind]
        raise ApiError(status, str(problem), code) from None
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise ApiError(422, "the clip is silent: record the voice again", "silent_clip")
    loud = np.flatnonzero(np.abs(samples) >= TRIM_PEAK)
    samples = samples[loud[0] : loud[-1] + 1] if loud.size else samples
    samples = samples[: int(MAX_PROMPT_SECONDS * SPEAKER_RATE)]
    if len(samples) < MIN_CLIP_SECONDS * SPEAKER_RATE:
        raise ApiError(422, f"only {len(samples) / SPEAKER_RATE:.1f} s of sound: upload at least {MIN_CLIP_SECONDS:g} s of speech", "too_short")
    problem = speech_problem(samples, SPEAKER_RATE)
    if problem:
        raise ApiError(422, f"the clip is not speech: {problem}. Upload a recording of one person speaking", "not_speech")
    return samples


def _write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Temporary file in the same folder, fsync, rename: readers see the old file or the new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
