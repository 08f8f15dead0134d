"""Response formats of the HTTP API: PCM from the synthesizer in, the bytes a client asked for out.

WAV and raw PCM stream as sentences render. The compressed formats (FLAC, MP3, Ogg Opus) are
encoded by libsndfile (through soundfile, no network, no ffmpeg) once the whole text is
rendered: their containers want the length or rewrite their header at the end.
"""

from __future__ import annotations

import io
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from ..audio import SAMPLE_WIDTH, StreamResampler, pcm_to_float

OPENAI_PCM_RATE = 24000
"""OpenAI's `pcm` is 24 kHz 16-bit mono; clients such as wyoming_openai assume it."""

OPUS_RATE = 48000
"""Opus encodes 8, 12, 16, 24 or 48 kHz only."""

_UNKNOWN_LENGTH = 0xFFFFFFFF
"""RIFF and data sizes of a WAV whose length is not known when its header is sent."""


@dataclass(frozen=True)
class OutputFormat:
    name: str
    media_type: str
    streams: bool
    """True: bytes go out as each sentence renders."""
    soundfile_format: str = ""
    soundfile_subtype: str = ""
    fixed_rate: int | None = None
    """A rate the format needs, whatever the voice's."""


FORMATS = {
    "wav": OutputFormat("wav", "audio/wav", streams=True),
    "pcm": OutputFormat("pcm", "audio/pcm", streams=True),
    "flac": OutputFormat("flac", "audio/flac", streams=False, soundfile_format="FLAC", soundfile_subtype="PCM_16"),
    "mp3": OutputFormat("mp3", "audio/mpeg", streams=False, soundfile_format="MP3", soundfile_subtype="MPEG_LAYER_III"),
    "opus": OutputFormat(
        "opus", "audio/ogg", streams=False, soundfile_format="OGG", soundfile_subtype="OPUS", fixed_rate=OPUS_RATE
    ),
}


def streaming_wav_header(rate: int, channels: int = 1) -> bytes:
    """A 44-byte WAV header with 'unknown' sizes, as streaming TTS services send."""
    byte_rate = rate * channels * SAMPLE_WIDTH
    return (
        b"RIFF"
        + struct.pack("<I", _UNKNOWN_LENGTH)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, byte_rate, channels * SAMPLE_WIDTH, SAMPLE_WIDTH * 8)
        + b"data"
        + struct.pack("<I", _UNKNOWN_LENGTH)
    )


async def encode(pcm: AsyncIterator[bytes], rate: int, fmt: OutputFormat, pcm_rate: int | None = None) -> AsyncIterator[bytes]:
    """Turn the synthesizer's PCM (int16 mono at `rate`) into `fmt`. `pcm_rate` resamples raw
    PCM output (the OpenAI endpoint's 24 kHz); None keeps the voice's rate."""
    if fmt.name == "wav":
        yield streaming_wav_header(rate)
        async for piece in pcm:
            yield piece
        return
    if fmt.name == "pcm":
        resampler = StreamResampler(rate, pcm_rate or rate)
        async for piece in pcm:
            out = resampler.feed(piece)
            if out:
                yield out
        tail = resampler.flush()
        if tail:
            yield tail
        return
    pieces = [piece async for piece in pcm]
    yield encode_whole(b"".join(pieces), rate, fmt)


def encode_whole(pcm: bytes, rate: int, fmt: OutputFormat) -> bytes:
    import soundfile as sf

    samples = pcm_to_float(pcm)
    if fmt.fixed_rate is not None and fmt.fixed_rate != rate:
        import soxr

        samples = np.asarray(soxr.resample(samples, rate, fmt.fixed_rate), dtype=np.float32)
        rate = fmt.fixed_rate
    out = io.BytesIO()
    with sf.SoundFile(out, "w", samplerate=rate, channels=1, format=fmt.soundfile_format, subtype=fmt.soundfile_subtype) as sound:
        sound.write(samples)
    return out.getvalue()
