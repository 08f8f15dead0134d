"""The audio cache key changes with every option that changes the audio, and only with those.

Every field of IndexTTSOptions must be named below as changing the audio or not: a new option
fails here until someone decides, so a render with other settings can never be served from a
key made without them."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from wyoming_indextts.audio import AudioFormat
from wyoming_indextts.cache import cache_key
from wyoming_indextts.engines.base import Voice, at_speed
from wyoming_indextts.engines.indextts.options import IndexTTSOptions

BASE = IndexTTSOptions()

CHANGES_AUDIO: dict[str, IndexTTSOptions] = {
    "do_sample": replace(BASE, do_sample=False),
    "top_k": replace(BASE, top_k=20),
    "top_p": replace(BASE, top_p=0.9),
    "temperature": replace(BASE, temperature=0.7),
    "repetition_penalty": replace(BASE, repetition_penalty=9.0),
    "max_mel_tokens": replace(BASE, max_mel_tokens=1000),
    "seed": replace(BASE, seed=7),
    "diffusion_steps": replace(BASE, diffusion_steps=10),
    "cfg_rate": replace(BASE, cfg_rate=0.5),
    "emotion": replace(BASE, emotion=(1.0, 0, 0, 0, 0, 0, 0, 0)),
    "speed": replace(BASE, speed=1.2),
    "int8": replace(BASE, int8=True),
    "speculative": replace(BASE, speculative=3),
    "language": replace(BASE, language="en"),
    "max_text_tokens_per_segment": replace(BASE, max_text_tokens_per_segment=60),
    "interval_silence_ms": replace(BASE, interval_silence_ms=100),
}
"""One variant per option that changes the audio, with everything else at its default."""

WITH_EMOTION = replace(BASE, emotion=(0, 0, 1.0, 0, 0, 0, 0, 0))
CHANGES_AUDIO_GIVEN: dict[str, tuple[IndexTTSOptions, IndexTTSOptions]] = {
    # emotion_strength scales an explicit emotion vector, so it counts only with one
    "emotion_strength": (WITH_EMOTION, replace(WITH_EMOTION, emotion_strength=0.5)),
}

NO_EFFECT_ON_AUDIO: dict[str, IndexTTSOptions] = {
    "threads": replace(BASE, threads=2),
    "verify_model": replace(BASE, verify_model=False),
    "min_clip_seconds": replace(BASE, min_clip_seconds=2.0),
    "max_clip_seconds": replace(BASE, max_clip_seconds=20.0),
}


def test_every_option_is_classified():
    named = set(CHANGES_AUDIO) | set(CHANGES_AUDIO_GIVEN) | set(NO_EFFECT_ON_AUDIO)
    assert {f.name for f in fields(IndexTTSOptions)} == named


@pytest.mark.parametrize("name", sorted(CHANGES_AUDIO))
def test_an_option_that_changes_the_audio_changes_the_key(name):
    assert CHANGES_AUDIO[name].audio_key() != BASE.audio_key()


@pytest.mark.parametrize("name", sorted(CHANGES_AUDIO_GIVEN))
def test_an_option_that_changes_the_audio_in_context_changes_the_key(name):
    before, after = CHANGES_AUDIO_GIVEN[name]
    assert before.audio_key() != after.audio_key()


@pytest.mark.parametrize("name", sorted(NO_EFFECT_ON_AUDIO))
def test_an_option_without_effect_on_the_audio_keeps_the_key(name):
    assert NO_EFFECT_ON_AUDIO[name].audio_key() == BASE.audio_key()


def test_greedy_speculative_decoding_keeps_the_fp32_key():
    greedy = replace(BASE, do_sample=False)
    assert replace(greedy, speculative=3).audio_key() == greedy.audio_key()


def key(voice: Voice) -> str:
    fmt = AudioFormat(rate=22050, width=2, channels=1)
    return cache_key(engine=voice.engine, voice=voice.name, fingerprint=voice.fingerprint, rate=fmt.rate, width=fmt.width, channels=fmt.channels, text="Hello.")


def test_a_request_speed_changes_the_sentence_key_and_speed_one_keeps_it():
    voice = Voice(name="grandma", engine="indextts", languages=("en",), sample_rate=22050, fingerprint="f" * 64)
    assert key(at_speed(voice, 1.25)) != key(voice)
    assert key(at_speed(voice, 1.25)) != key(at_speed(voice, 1.5))
    assert key(at_speed(voice, 1.0)) == key(voice)
