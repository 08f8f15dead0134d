"""The IndexTTS engine serving an IndexTTS-2.5 model folder: voices prepared for a 2.0 model
are not reused (conditioning is keyed by the model's manifest hash), and the speech rate
(`IndexTTSOptions.speed`, a voice's yaml `speed`) sets the official duration factor.

Text goes through the folder's own 2.5 frontend (`text/frontend25.py`, tiktoken).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("indextts25")

from tests.indextts.conftest import voiced_clip, write_clip  # noqa: E402
from wyoming_indextts.engines.base import EngineError  # noqa: E402
from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions  # noqa: E402
from wyoming_indextts.engines.indextts.codec import target_mel_frames25  # noqa: E402

pytestmark = pytest.mark.slow

TEXT = "hello world! the weather today"
CLIP_RATE = 24000
HOP = 256


def options(**kwargs) -> IndexTTSOptions:
    return IndexTTSOptions(do_sample=False, diffusion_steps=2, seed=3, **kwargs)


@pytest.fixture()
def voices_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "voices"
    write_clip(folder / "mia.wav", voiced_clip(1.6, CLIP_RATE, seed=7), CLIP_RATE)
    (folder / "mia.yaml").write_text("languages: [en]\n")
    write_clip(folder / "ben.wav", voiced_clip(1.6, CLIP_RATE, seed=9), CLIP_RATE)
    (folder / "ben.yaml").write_text("languages: [en]\nspeed: 0.8\n")
    return folder


def load25(model_dir: Path, voices_dir: Path, store: Path, opts: IndexTTSOptions) -> IndexTTSEngine:
    return IndexTTSEngine.load(model_dir, voices_dir, store, opts)


def test_voices_prepared_for_20_are_not_reused_for_25(
    tiny_model_dir: Path, tiny25_model_dir: Path, voices_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "prepared"
    engine20 = IndexTTSEngine.load(tiny_model_dir, voices_dir, store, IndexTTSOptions())
    prepared20 = {path: path.read_bytes() for path in store.glob("*.npz")}
    voices20 = {v.name: v.fingerprint for v in engine20.voices()}
    engine20.close()
    assert len(prepared20) == 2

    engine25 = load25(tiny25_model_dir, voices_dir, store, options())
    try:
        prepared25 = set(store.glob("*.npz")) - set(prepared20)
        assert len(prepared25) == 2, "each voice is prepared again for the 2.5 model"
        assert {path: path.read_bytes() for path in prepared20} == prepared20, "the 2.0 files are left alone"
        for voice in engine25.voices():
            assert voice.fingerprint != voices20[voice.name]
            # 2.5's speaker conditioning is one projected row, not 2.0's 32 perceiver latents
            assert engine25._voices[voice.name].conditioning.speaker_latents.shape[1] == 1
        assert b"".join(engine25.synthesize(TEXT, engine25.voices()[0]))
    finally:
        engine25.close()


def test_speed_sets_the_duration_factor(tiny25_model_dir: Path, voices_dir: Path, tmp_path: Path) -> None:
    lengths = {}
    for speed in (1.0, 1.25):
        engine = load25(tiny25_model_dir, voices_dir, tmp_path / "prepared", options(speed=speed))
        try:
            voices = {v.name: v for v in engine.voices()}
            ids = engine.text_segments(TEXT, ["en"])[0]
            assert ids.language == "en" and ids[0] == engine.pipeline.frontend.frontend.tokenizer.encode("", "en")[0]
            for name in ("mia", "ben"):
                result = engine.render(ids, voices[name])
                assert result.codes.size >= 8
                lengths[(name, speed)] = (result.codes.size, result.wav.size)
        finally:
            engine.close()
    for (name, speed), (codes, samples) in lengths.items():
        voice_speed = 0.8 if name == "ben" else speed  # the yaml's speed wins over the option
        assert samples == target_mel_frames25(2 * codes, 1.0 / voice_speed) * HOP, (name, speed)
    assert lengths[("mia", 1.25)][1] < lengths[("mia", 1.0)][1]
    assert lengths[("ben", 1.25)] == lengths[("ben", 1.0)]


def test_language_per_text(tiny25_model_dir: Path, voices_dir: Path, tmp_path: Path) -> None:
    engine = load25(tiny25_model_dir, voices_dir, tmp_path / "prepared", options())
    try:
        assert engine.text_segments("今天天气很好", ["en"])[0].language == "zh"
        assert engine.text_segments("hola buenos días", ["es", "en"])[0].language == "es"
        assert engine.text_segments("مرحبا", ["en"])[0].language == "ar"
        assert engine.text_segments(TEXT, ["zh", "en"])[0].language == "en"
        # Spanish is upper-cased and gets its own language token (the frontend's own tests
        # check the ids against the official tokenizer; the parity tests, the language id)
        spanish = engine.text_segments(TEXT, ["es"])[0]
        assert spanish[0] != engine.text_segments(TEXT, ["en"])[0][0] and len(spanish) > len(TEXT.split())
    finally:
        engine.close()


def test_speed_needs_an_indextts25_model(tiny_model_dir: Path, voices_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="2.5"):
        IndexTTSEngine.load(tiny_model_dir, voices_dir, tmp_path / "prepared", IndexTTSOptions(speed=1.2))
