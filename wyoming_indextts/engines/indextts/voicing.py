"""Does a clip hold someone speaking? A cheap, explainable test on 45 ms frames every 10 ms.

Speech has voiced frames (vowels: the signal repeats every pitch period, 60-400 Hz), its pitch
moves (intonation) and its loudness rises and falls with the syllables. So a clip is refused as

* constant: nothing left once its mean (DC) is removed;
* not voiced: too few voiced frames (named noise when the spectrum is flat: hiss, clicks);
* a tone: voiced, but its pitch never moves;
* a steady sound: voiced, pitch moving, but its loudness never changes (a siren).

It is a plausibility check against files that are plainly not a voice, not a speech detector:
music with a singer passes.
"""

from __future__ import annotations

import numpy as np

FRAME_SECONDS = 0.045
"""Two periods of the lowest pitch (60 Hz): the autocorrelation needs a whole period to compare."""
HOP_SECONDS = 0.010
MIN_PITCH, MAX_PITCH = 60.0, 400.0
"""Speaking voices, from a low male voice to a child's."""
CONSTANT_LEVEL = 10 ** (-60 / 20)
"""What is left once the mean is removed: below -60 dBFS (the silence floor) the clip is a constant."""
ACTIVE_RANGE_DB = 35.0
"""Frames within 35 dB of the loudest are sound; pauses and breaths mostly sit below."""
VOICED_CORRELATION = 0.6
"""Normalised autocorrelation at the pitch period: 1 for a perfectly periodic frame. White noise's
best over the pitch lags measured 0.10 (median frame) and 0.17 at most in 3 s, about
1/sqrt(frame length) as expected; 0.6 leaves room for breathy and noisy vowels."""
OCTAVE_MARGIN = 0.9
"""The first peak within 90 % of the best is the period: a periodic signal also correlates at
2 and 3 periods, which would read as an octave jump."""
MIN_VOICED_SECONDS = 0.4
"""A few syllables' vowels. Piper's and Kokoro's sentences were 54-84 % voiced, and a clip is at
least 1 s of sound; brown noise's chance periodic frames came to 0.14 s in 3 s, white and pink
noise's to none."""
NOISE_FLATNESS = 0.3
"""Median spectral flatness (geometric / arithmetic mean of the power spectrum) of the sound
frames: white noise 0.56, speech under 0.01 (the tests' synthetic voice 0.14). Only names the
problem in the message."""
MIN_PITCH_SPREAD = 0.5
"""Standard deviation of the pitch in semitones: Piper's and Kokoro's sentences measured 2.7-4.9
(intonation); a sine's or square wave's stays at 0.00, so half a semitone leaves room for a
monotonous reader."""
MIN_LEVEL_SPREAD_DB = 1.5
"""Standard deviation of the frame level in dB: syllables make speech's 6-9 (Piper, Kokoro), the
tests' synthetic voice (a syllable envelope from 0.4 to 1) about 2; a siren's, a tone's and
white noise's stay under 0.2, pink noise's under 1."""
_CHUNK_FRAMES = 256
"""Frames analysed together: a few MB of FFT at a time, whatever the clip's length."""


def speech_problem(samples: np.ndarray, rate: int) -> str | None:
    """None when `samples` (mono, at least one frame long) hold voiced speech; otherwise why they
    are not speech, as one clause."""
    signal = np.asarray(samples, dtype=np.float64)
    signal = signal - signal.mean()
    width, hop = int(FRAME_SECONDS * rate), int(HOP_SECONDS * rate)
    if float(np.sqrt(np.mean(signal**2))) < CONSTANT_LEVEL:
        return "it is a constant (DC) signal"
    frames = np.lib.stride_tricks.sliding_window_view(signal, width)[::hop]
    parts = [_analyse(frames[start : start + _CHUNK_FRAMES], rate) for start in range(0, frames.shape[0], _CHUNK_FRAMES)]
    level, pitch, flat = (np.concatenate(column) for column in zip(*parts))
    active = level >= level.max() - ACTIVE_RANGE_DB
    voiced = active & (pitch > 0)
    if voiced.sum() * HOP_SECONDS < MIN_VOICED_SECONDS:
        if np.median(flat[active]) >= NOISE_FLATNESS:
            return "it sounds like noise (no voiced sounds)"
        return f"it has under {MIN_VOICED_SECONDS:g} s of voiced sound (vowels)"
    if np.std(12 * np.log2(pitch[voiced])) < MIN_PITCH_SPREAD:
        return "it is a steady tone (its pitch never moves)"
    if np.std(level[active]) < MIN_LEVEL_SPREAD_DB:
        return "it is a steady sound (its loudness never rises and falls as syllables do)"
    return None


def _analyse(frames: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: level (dB), pitch (Hz; 0 when unvoiced) and spectral flatness."""
    frames = frames - frames.mean(axis=1, keepdims=True)
    width = frames.shape[1]
    size = 1 << (2 * width - 1).bit_length()  # zero-padded: a linear, not circular, correlation
    power = np.abs(np.fft.rfft(frames, size, axis=1)) ** 2
    correlation = np.fft.irfft(power, size, axis=1)[:, :width]
    energy = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(int(rate / MAX_PITCH), int(np.ceil(rate / MIN_PITCH)) + 2)
    # Normalised: the first width-lag samples against the last width-lag, each by its own energy,
    # so long lags (low voices) are not penalised for overlapping less.
    head = energy[:, width - lags]
    tail = energy[:, width : width + 1] - energy[:, lags]
    normalised = correlation[:, lags] / np.sqrt(head * tail + 1e-20)
    level = 10 * np.log10(energy[:, -1] / width + 1e-20)
    pitch = np.array([_pitch(row, lags, rate) for row in normalised])
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(width), axis=1)) ** 2 + 1e-20
    flatness = np.exp(np.mean(np.log(spectrum), axis=1)) / np.mean(spectrum, axis=1)
    return level, pitch, flatness


def _pitch(correlation: np.ndarray, lags: np.ndarray, rate: int) -> float:
    """The pitch of one frame from its normalised autocorrelation over `lags`, or 0."""
    inner = correlation[1:-1]
    peaks = np.flatnonzero((inner > correlation[:-2]) & (inner >= correlation[2:])) + 1
    peaks = peaks[correlation[peaks] >= VOICED_CORRELATION]
    if peaks.size == 0:
        return 0.0
    best = peaks[np.argmax(correlation[peaks])]
    first = peaks[correlation[peaks] >= OCTAVE_MARGIN * correlation[best]][0]
    # A parabola through the peak and its neighbours: the period to a fraction of a sample, so
    # a tone's pitch reads as steady and a glide as moving even at high pitches.
    left, mid, right = correlation[first - 1 : first + 2]
    offset = 0.5 * (left - right) / (left - 2 * mid + right) if left - 2 * mid + right < 0 else 0.0
    return float(rate / (lags[first] + offset))
