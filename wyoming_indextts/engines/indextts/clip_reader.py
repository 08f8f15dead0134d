"""Reading a voice clip with bounded memory, for the voices folder and for uploads alike.

The header (format, channels, rate, length) is checked before any audio is decoded; then the
audio is decoded in blocks, each block down-mixed to mono (the channel mean, as librosa) and,
when a rate is asked for, resampled as it streams. A small compressed file that expands to
gigabytes (0.7 MB of 8-channel 655 kHz FLAC silence is 119 s, 2.5 GB as float32) is refused
from its header, and an accepted file is never held whole with all its channels (nor, for an
upload, at its own rate).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .format import MAX_PROMPT_SECONDS

MIN_RATE = 8_000
"""Telephone audio: the lowest rate that still carries a voice's formants."""
MAX_RATE = 192_000
"""The highest rate recorders and sound cards use (FLAC allows 655 350 Hz, which no microphone records)."""
MAX_CHANNELS = 8
"""7.1 surround at most; the channels are averaged to mono (a voice clip needs one)."""
MAX_DECODED_SAMPLES = 48_000_000
"""Samples (frames x channels) decoded for one clip: 2 minutes of 192 kHz stereo or 48 kHz 7.1,
a few seconds of CPU. Decoding holds BLOCK_SAMPLES of them at a time, never all."""
BLOCK_SAMPLES = 1 << 20
"""Samples decoded at once, whatever the channel count: 4 MiB of float32."""
UPLOAD_FORMATS = ("WAV", "FLAC", "OGG", "MP3")
"""libsndfile's container names; MP3 needs libsndfile 1.1 or newer (soundfile's wheels have it)."""
READABLE = f"{', '.join(UPLOAD_FORMATS[:-1])} or {UPLOAD_FORMATS[-1]}"
UNKNOWN_FRAMES = 2**63 - 1
"""libsndfile's frame count for a file that does not say its length (a FLAC written on the fly);
soundfile cannot read such a file from a seekable source anyway."""


class ClipProblem(Exception):
    """A clip that cannot be used. `kind` names the reason for callers that map it to a status:
    unreadable, format, too_long, too_large, invalid, empty."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ClipHeader:
    format: str
    channels: int
    rate: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


def too_long(seconds: float, max_seconds: float) -> ClipProblem:
    return ClipProblem(
        f"{seconds:.1f} s is too long: use at most {max_seconds:g} s of one speaker "
        f"(the model reads {MAX_PROMPT_SECONDS:g} s at most; a shorter clip speaks sooner)",
        "too_long",
    )


def check_header(header: ClipHeader, max_seconds: float, formats: Collection[str] = ()) -> None:
    """Everything decoding would cost, refused from the header alone."""
    if formats and header.format not in formats:
        raise ClipProblem(f"{header.format} audio is not accepted: use {READABLE}", "format")
    if not MIN_RATE <= header.rate <= MAX_RATE:
        raise ClipProblem(
            f"a sample rate of {header.rate} Hz is not a voice recording's: use {MIN_RATE // 1000}-{MAX_RATE // 1000} kHz", "too_large"
        )
    if not 1 <= header.channels <= MAX_CHANNELS:
        raise ClipProblem(f"{header.channels} channels: use mono or stereo (at most {MAX_CHANNELS} channels)", "too_large")
    if header.frames == UNKNOWN_FRAMES:
        raise ClipProblem(f"the {header.format} file does not say how long it is (written as a stream): save it again", "unreadable")
    if header.seconds > max_seconds:
        raise too_long(header.seconds, max_seconds)
    if header.frames * header.channels > MAX_DECODED_SAMPLES:
        raise ClipProblem(
            f"{header.channels} channels at {header.rate} Hz for {header.seconds:.0f} s is more audio than a voice clip "
            f"needs: use mono or stereo at up to 48 kHz",
            "too_large",
        )


def read_mono(
    source: str | Path | IO[bytes], max_seconds: float, formats: Collection[str] = (), target_rate: int | None = None
) -> tuple[np.ndarray, int]:
    """The clip as float32 mono and its rate (`target_rate` when given), decoded in blocks.

    Raises ClipProblem before decoding for a header over the limits (soundfile reads a file no
    further than its header's frame count, so the header bounds the work), and while decoding
    for NaN, infinity or a damaged stream."""
    import soundfile as sf

    try:
        sound = sf.SoundFile(str(source) if isinstance(source, Path) else source)
    except Exception as err:  # noqa: BLE001 - libsndfile raises several types for bad input
        # Not str(err): for an upload it names the temporary file object, which means nothing to a user.
        reason = str(getattr(err, "error_string", "") or "format not recognised").rstrip(".")
        raise ClipProblem(f"not readable as audio ({reason[:1].lower()}{reason[1:]}): use {READABLE}", "unreadable") from None
    with sound:
        header = ClipHeader(sound.format, sound.channels, sound.samplerate, sound.frames)
        check_header(header, max_seconds, formats)
        block = np.empty((max(1, BLOCK_SAMPLES // header.channels), header.channels), dtype=np.float32)
        resampler = _Resampler(header.rate, target_rate) if target_rate and target_rate != header.rate else None
        pieces: list[np.ndarray] = []
        frames = 0
        try:
            while (read := sound.read(block.shape[0], dtype="float32", always_2d=True, out=block)).shape[0]:
                frames += read.shape[0]
                if not np.isfinite(read).all():
                    raise ClipProblem("contains invalid samples (NaN or infinity)", "invalid")
                mono = read.mean(axis=1, dtype=np.float32) if header.channels > 1 else read[:, 0].copy()
                pieces.append(resampler.feed(mono) if resampler else mono)
        except ClipProblem:
            raise
        except Exception as err:  # noqa: BLE001 - a damaged stream fails part-way through
            raise ClipProblem(f"damaged audio ({str(err).splitlines()[0].strip()})", "unreadable") from None
    if frames == 0:
        raise ClipProblem("contains no audio", "empty")
    if not resampler:
        return np.concatenate(pieces), header.rate
    pieces.append(resampler.finish())
    samples = np.concatenate(pieces)
    size = -(-frames * resampler.target // header.rate)  # librosa's length, ceil(n * ratio)
    return np.pad(samples[:size], (0, max(0, size - samples.shape[0]))), resampler.target


class _Resampler:
    """soxr HQ (librosa's `soxr_hq`) as a stream: one block in memory at a time."""

    def __init__(self, rate: int, target: int) -> None:
        import soxr

        self.target = target
        self.stream = soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")

    def feed(self, mono: np.ndarray) -> np.ndarray:
        return self.stream.resample_chunk(mono)

    def finish(self) -> np.ndarray:
        return self.stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
