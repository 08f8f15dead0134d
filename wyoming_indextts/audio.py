"""PCM helpers: the one audio format a response keeps, and streaming resampling to it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr

SAMPLE_WIDTH = 2
"""Every engine and every response speaks 16-bit signed little-endian PCM."""

MIN_RATE = 8_000
MAX_RATE = 192_000
"""The sample rates audio may have here: telephone speech to studio audio. soxr is never
handed anything else: with a rate of NaN, infinity or 1e308 its constructor never returns and
holds the GIL (the whole server froze), and 2 Hz turned 500 samples into 250 s of audio."""


def check_rate(rate: object) -> int:
    """`rate` as an int, or ValueError saying why it cannot be a sample rate here."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise ValueError(f"a sample rate must be a number of Hz, not {type(rate).__name__}")
    if not math.isfinite(rate) or rate != int(rate):
        raise ValueError(f"a sample rate must be a whole number of Hz, not {rate!r}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"a sample rate of {rate:g} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    return int(rate)


@dataclass(frozen=True)
class AudioFormat:
    """What `audio-start` announces; Home Assistant writes its WAV header from it."""

    rate: int
    width: int = SAMPLE_WIDTH
    channels: int = 1

    @property
    def bytes_per_second(self) -> int:
        return self.rate * self.width * self.channels

    def seconds(self, pcm: bytes | int) -> float:
        size = pcm if isinstance(pcm, int) else len(pcm)
        return size / self.bytes_per_second


def pcm_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm(samples: np.ndarray) -> bytes:
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 32767.0 / 32768.0)
    return (clipped * 32768.0).astype("<i2").tobytes()


def to_mono16(pcm: bytes, width: int, channels: int) -> bytes:
    """Whole frames of little-endian PCM (`width` 1-4 bytes, 8-bit unsigned as in WAV, the
    others signed) in `channels` interleaved channels → int16 mono, the channels averaged."""
    if width == SAMPLE_WIDTH and channels == 1:
        return pcm
    if width == 1:
        samples = (np.frombuffer(pcm, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 3:
        bytes3 = np.frombuffer(pcm, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        # The top byte's sign, then the most significant 16 bits of the 24.
        samples = ((bytes3[:, 2] << 24) | (bytes3[:, 1] << 16)) >> 16
    else:
        samples = np.frombuffer(pcm, dtype={2: "<i2", 4: "<i4"}[width]).astype(np.int32)
        if width == 4:
            samples = samples >> 16
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int32)
    return samples.astype("<i2").tobytes()


class StreamResampler:
    """Resamples int16 mono PCM that arrives in pieces, keeping filter state across them.

    A fallback engine's audio must come out at the rate the response already announced;
    resampling piece by piece with fresh state would click at every boundary.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        """ValueError for a rate outside `MIN_RATE`-`MAX_RATE` (see there)."""
        self.src_rate = check_rate(src_rate)
        self.dst_rate = check_rate(dst_rate)
        self._stream = (
            None if self.src_rate == self.dst_rate else soxr.ResampleStream(self.src_rate, self.dst_rate, 1, dtype="float32")
        )
        self._odd_byte = b""

    def feed(self, pcm: bytes) -> bytes:
        pcm = self._odd_byte + pcm
        # Engines stream bytes; an odd length would split a sample, so carry the spare byte.
        whole = len(pcm) - len(pcm) % SAMPLE_WIDTH
        pcm, self._odd_byte = pcm[:whole], pcm[whole:]
        if self._stream is None:
            return pcm
        return float_to_pcm(self._stream.resample_chunk(pcm_to_float(pcm)))

    def flush(self) -> bytes:
        if self._stream is None:
            return b""
        return float_to_pcm(self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
