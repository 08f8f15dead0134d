"""PCM helpers: the one audio format a response keeps, and streaming resampling to it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

SAMPLE_WIDTH = 2
"""Every engine and every response speaks 16-bit signed little-endian PCM."""


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


class StreamResampler:
    """Resamples int16 mono PCM that arrives in pieces, keeping filter state across them.

    A fallback engine's audio must come out at the rate the response already announced;
    resampling piece by piece with fresh state would click at every boundary.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._stream = (
            None if src_rate == dst_rate else soxr.ResampleStream(src_rate, dst_rate, 1, dtype="float32")
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
