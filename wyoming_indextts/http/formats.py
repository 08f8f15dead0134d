"""Response formats of the HTTP API: PCM from the synthesizer in, the bytes a client asked for out.

WAV and raw PCM stream as sentences render. The compressed formats (FLAC, MP3, Ogg Opus) are
encoded by libsndfile (through soundfile, no network, no ffmpeg) piece by piece as the text
renders, and sent whole at the end: their containers want the length or rewrite their header
when closed.

The encoders are plain synchronous objects: resampling and encoding are CPU work, so the
response runs `feed` and `finish` in worker threads (soxr and libsndfile release the GIL), one
call at a time, never on the event loop that Wyoming shares.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

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
    """True: bytes go out as each sentence renders; False: the whole reply is held until the
    end, so its length is capped (see speech.py)."""
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


class Encoder:
    """int16 mono PCM at the voice's rate in, the format's bytes out. Not thread-safe: one
    call at a time (the response awaits each before the next)."""

    cpu_bound = True
    """False: feed and finish only pass bytes along; no worker thread needed."""

    def start(self) -> bytes:
        return b""

    def feed(self, pcm: bytes) -> bytes:
        raise NotImplementedError

    def finish(self) -> bytes:
        return b""


class _WavEncoder(Encoder):
    cpu_bound = False

    def __init__(self, rate: int) -> None:
        self.rate = rate

    def start(self) -> bytes:
        return streaming_wav_header(self.rate)

    def feed(self, pcm: bytes) -> bytes:
        return pcm


class _PcmEncoder(Encoder):
    def __init__(self, rate: int, out_rate: int) -> None:
        self.resampler = StreamResampler(rate, out_rate)
        self.cpu_bound = rate != out_rate

    def feed(self, pcm: bytes) -> bytes:
        return self.resampler.feed(pcm)

    def finish(self) -> bytes:
        return self.resampler.flush()


class _SoundFileEncoder(Encoder):
    def __init__(self, rate: int, fmt: OutputFormat) -> None:
        out_rate = fmt.fixed_rate or rate
        self.resampler = StreamResampler(rate, out_rate)
        self.out = io.BytesIO()
        self.rate = out_rate
        self.fmt = fmt
        self._sound: Any = None

    def _write(self, pcm: bytes) -> None:
        import soundfile as sf

        if self._sound is None:
            self._sound = sf.SoundFile(
                self.out, "w", samplerate=self.rate, channels=1, format=self.fmt.soundfile_format, subtype=self.fmt.soundfile_subtype
            )
        if pcm:
            self._sound.write(pcm_to_float(pcm))

    def feed(self, pcm: bytes) -> bytes:
        self._write(self.resampler.feed(pcm))
        return b""

    def finish(self) -> bytes:
        self._write(self.resampler.flush())
        assert self._sound is not None
        self._sound.close()
        return self.out.getvalue()


def encoder_for(fmt: OutputFormat, rate: int, pcm_rate: int | None = None) -> Encoder:
    """The encoder turning the synthesizer's PCM (int16 mono at `rate`) into `fmt`. `pcm_rate`
    resamples raw PCM output (the OpenAI endpoint's 24 kHz); None keeps the voice's rate."""
    if fmt.name == "wav":
        return _WavEncoder(rate)
    if fmt.name == "pcm":
        return _PcmEncoder(rate, pcm_rate or rate)
    return _SoundFileEncoder(rate, fmt)

