"""Voices folder: discovery, bad clips skipped with a message, conditioning cached and reused."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from tests.indextts.conftest import voiced_clip, write_clip
from wyoming_indextts.engines.base import EngineError
from wyoming_indextts.engines.indextts.voice import (
    DEFAULT_LANGUAGES,
    ConditioningStore,
    VoiceConditioning,
    discover_voices,
    librosa_resample,
    prepare_clip_audio,
    read_clip,
    torchaudio_resample,
)

RATE = 24000


@pytest.fixture
def voices_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "voices"
    write_clip(folder / "anna.wav", voiced_clip(2.2, RATE, seed=1), RATE)
    (folder / "anna.yaml").write_text("description: Anna, calm\nlanguages: [en]\n")
    write_clip(folder / "bo.wav", voiced_clip(1.6, 16000, seed=2), 16000)  # no yaml: defaults
    write_clip(folder / "tiny.wav", voiced_clip(0.4, RATE), RATE)
    write_clip(folder / "hush.wav", np.zeros(RATE * 2, dtype=np.float32), RATE)
    write_clip(folder / "epic.wav", voiced_clip(31.0, 8000), 8000)
    (folder / "junk.wav").write_bytes(b"RIFF\x00\x00\x00\x00this is not a wave file")
    write_clip(folder / "badyaml.wav", voiced_clip(1.5, RATE), RATE)
    (folder / "badyaml.yaml").write_text("languages: 7\n")
    return folder


def test_discovery_reads_settings_and_reports_bad_settings(voices_dir: Path) -> None:
    specs, problems = discover_voices(voices_dir)
    by_name = {spec.name: spec for spec in specs}
    assert by_name["anna"].description == "Anna, calm" and by_name["anna"].languages == ("en",)
    assert by_name["bo"].languages == DEFAULT_LANGUAGES == ("zh", "en") and by_name["bo"].description == ""
    assert len(by_name["anna"].clip_sha256) == 64
    assert "badyaml" not in by_name
    assert any("badyaml.yaml" in p and "languages" in p for p in problems)


@pytest.mark.slow
def test_bad_clips_are_skipped_and_good_voices_served(
    tiny_model_dir: Path, voices_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions

    options = IndexTTSOptions(do_sample=False, diffusion_steps=2, max_mel_tokens=12, seed=1)
    with caplog.at_level(logging.WARNING):
        engine = IndexTTSEngine.load(tiny_model_dir, voices_dir, tmp_path / "cond", options)
    try:
        assert sorted(v.name for v in engine.voices()) == ["anna", "bo"]
        messages = "\n".join(r.getMessage() for r in caplog.records)
        assert "tiny.wav" in messages and "too short" in messages
        assert "hush.wav" in messages and "silent" in messages
        assert "epic.wav" in messages and "too long" in messages
        assert "junk.wav" in messages and "not readable as audio" in messages
        assert "badyaml.yaml" in messages
        assert len(engine.problems) == 5
        pcm = b"".join(engine.synthesize("Hi.", engine.voices()[1]))
        assert len(pcm) > 0
    finally:
        engine.close()


@pytest.mark.slow
def test_conditioning_is_cached_on_disk_and_reused(tiny_model_dir: Path, tmp_path: Path) -> None:
    from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions
    from wyoming_indextts.engines.indextts.pipeline import serving_graphs
    from wyoming_indextts.engines.indextts.preparation import CONDITIONING_GRAPHS

    voices = tmp_path / "voices"
    write_clip(voices / "anna.wav", voiced_clip(2.0, RATE, seed=1), RATE)
    cond_dir = tmp_path / "cond"
    options = IndexTTSOptions(diffusion_steps=2, max_mel_tokens=10, seed=2)

    first = IndexTTSEngine.load(tiny_model_dir, voices, cond_dir, options)
    try:
        assert set(CONDITIONING_GRAPHS) <= set(first.model.created)
        # prepared, then released: serving holds only what synthesis needs
        assert not any(first.model.is_loaded(g) for g in CONDITIONING_GRAPHS)
        assert all(first.model.is_loaded(g) for g in serving_graphs(options))
        stored = list(cond_dir.glob("*.npz"))
        assert len(stored) == 1 and not list(cond_dir.glob("*.tmp"))
        audio = b"".join(first.synthesize("Hello.", first.voices()[0]))
        fingerprint = first.voices()[0].fingerprint
        latents = first._voices["anna"].conditioning.speaker_latents
    finally:
        first.close()

    second = IndexTTSEngine.load(tiny_model_dir, voices, cond_dir, options)
    try:
        assert not set(CONDITIONING_GRAPHS) & set(second.model.created)  # none even opened
        np.testing.assert_array_equal(second._voices["anna"].conditioning.speaker_latents, latents)
        assert second.voices()[0].fingerprint == fingerprint
        assert b"".join(second.synthesize("Hello.", second.voices()[0])) == audio
    finally:
        second.close()

    # A damaged file is prepared again (and rewritten), not fatal.
    stored[0].write_bytes(b"garbage")
    third = IndexTTSEngine.load(tiny_model_dir, voices, cond_dir, options)
    try:
        assert "gpt_speaker_conditioning" in third.model.created
        np.testing.assert_allclose(third._voices["anna"].conditioning.speaker_latents, latents, atol=1e-6)
    finally:
        third.close()
    with np.load(stored[0]) as data:
        assert "speaker_latents" in data

    # A changed clip is a different voice: new conditioning, new fingerprint.
    write_clip(voices / "anna.wav", voiced_clip(2.0, RATE, seed=9), RATE)
    fourth = IndexTTSEngine.load(tiny_model_dir, voices, cond_dir, options)
    try:
        assert fourth.voices()[0].fingerprint != fingerprint
        assert len(list(cond_dir.glob("*.npz"))) == 2
    finally:
        fourth.close()


@pytest.mark.slow
def test_no_usable_voice_is_an_engine_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    from wyoming_indextts.engines.indextts import IndexTTSEngine

    voices = tmp_path / "voices"
    write_clip(voices / "hush.wav", np.zeros(RATE * 2, dtype=np.float32), RATE)
    with pytest.raises(EngineError, match="no usable voice.*hush.wav.*silent"):
        IndexTTSEngine.load(tiny_model_dir, voices, tmp_path / "cond")


def test_fingerprint_covers_audio_options_only() -> None:
    from wyoming_indextts.engines.indextts import IndexTTSOptions

    base = IndexTTSOptions()
    assert IndexTTSOptions(threads=2, verify_model=False).audio_key() == base.audio_key()
    assert IndexTTSOptions(emotion_strength=0.3).audio_key() == base.audio_key()  # no vector: no effect
    for changed in (
        IndexTTSOptions(seed=1),
        IndexTTSOptions(diffusion_steps=10),
        IndexTTSOptions(cfg_rate=0.5),
        IndexTTSOptions(emotion=(1, 0, 0, 0, 0, 0, 0, 0)),
        IndexTTSOptions(emotion=(1, 0, 0, 0, 0, 0, 0, 0), emotion_strength=0.5),
        IndexTTSOptions(temperature=0.6),
        IndexTTSOptions(do_sample=False),
    ):
        assert changed.audio_key() != base.audio_key()
    with pytest.raises(ValueError, match="8 weights"):
        IndexTTSOptions(emotion=(1.0, 0.0))


def test_store_round_trip_is_atomic_and_keyed(tmp_path: Path) -> None:
    store = ConditioningStore(tmp_path, "m" * 64)
    rng = np.random.default_rng(0)
    cond = VoiceConditioning(
        speaker_latents=rng.standard_normal((1, 32, 8), dtype=np.float32),
        emovec_speaker=rng.standard_normal((1, 8), dtype=np.float32),
        emovec_emotion=rng.standard_normal((1, 8), dtype=np.float32),
        style=rng.standard_normal((1, 192), dtype=np.float32),
        prompt_condition=rng.standard_normal((1, 5, 4), dtype=np.float32),
        ref_mel=rng.standard_normal((1, 80, 5), dtype=np.float32),
    )
    path = store.save("c" * 64, cond)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    loaded = store.load("c" * 64)
    for name, array in cond.arrays().items():
        np.testing.assert_array_equal(getattr(loaded, name), array)
    assert store.load("d" * 64) is None
    assert ConditioningStore(tmp_path, "n" * 64).load("c" * 64) is None  # another model


def test_resampling_matches_librosa_and_torchaudio(tmp_path: Path) -> None:
    librosa = pytest.importorskip("librosa")
    torch = pytest.importorskip("torch")
    from tests.indextts.test_engine_parity import torchaudio_resample as torch_port

    stereo = np.stack([voiced_clip(1.7, 44100, seed=3), voiced_clip(1.7, 44100, seed=5)], axis=1)
    clip = write_clip(tmp_path / "stereo.wav", stereo, 44100)
    samples, rate = read_clip(clip)
    for target in (22050, 16000):
        expected, _ = librosa.load(str(clip), sr=target)
        np.testing.assert_array_equal(librosa_resample(samples, rate, target), expected)
    y22, _ = librosa.load(str(clip))
    expected = torch_port(torch.tensor(y22)[None], 22050, 16000)[0].numpy()
    mine = torchaudio_resample(y22, 22050, 16000)
    assert mine.shape == expected.shape == (math.ceil(y22.shape[0] * 16000 / 22050),)
    np.testing.assert_allclose(mine, expected, atol=2e-6)
    audio = prepare_clip_audio(samples, rate, prompt_seconds=1.0)
    assert audio.speaker_22k.shape == (22050,) and audio.emotion_16k.shape == (16000,)
    assert audio.speaker_16k.shape == (16000,)
