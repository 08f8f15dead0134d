"""The engine's exact fast paths on the tiny model: speculative decoding (--indextts-speculative)
and several texts rendered with one batched GPT pass (synthesize_batch)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.indextts.conftest import voiced_clip, write_clip  # noqa: E402
from wyoming_indextts.engines.base import EngineError  # noqa: E402
from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions  # noqa: E402

pytestmark = pytest.mark.slow

GREEDY = IndexTTSOptions(do_sample=False, seed=21, diffusion_steps=2, max_mel_tokens=40, max_text_tokens_per_segment=10)
TEXTS = ["Dinner is ready.", "The washing machine has finished its cycle, and the door is open.", "Good morning!"]


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("voices")
    write_clip(folder / "lena.wav", voiced_clip(3.0, 22050, seed=4), 22050)
    return folder


@pytest.fixture(scope="module")
def conditioning_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conditioning")


def load(model_dir: Path, voices_dir: Path, conditioning_dir: Path, options: IndexTTSOptions) -> IndexTTSEngine:
    return IndexTTSEngine.load(model_dir, voices_dir, conditioning_dir, options)


@pytest.fixture(scope="module")
def greedy(tiny_model_dir: Path, voices_dir: Path, conditioning_dir: Path) -> IndexTTSEngine:
    engine = load(tiny_model_dir, voices_dir, conditioning_dir, GREEDY)
    yield engine
    engine.close()


def alone(engine: IndexTTSEngine, text: str) -> bytes:
    return b"".join(engine.synthesize(text, engine.voices()[0]))


def test_synthesize_batch_equals_one_by_one(greedy: IndexTTSEngine) -> None:
    assert len(greedy.text_segments(TEXTS[1])) > 1  # a text of several segments rides along
    together = greedy.synthesize_batch(TEXTS, greedy.voices()[0])
    assert together == [alone(greedy, text) for text in TEXTS]


def test_synthesize_batch_seeded_sampling_equals_one_by_one(tiny_model_dir: Path, voices_dir: Path, conditioning_dir: Path) -> None:
    engine = load(tiny_model_dir, voices_dir, conditioning_dir, replace(GREEDY, do_sample=True, seed=5))
    try:
        assert engine.synthesize_batch(TEXTS, engine.voices()[0]) == [alone(engine, text) for text in TEXTS]
    finally:
        engine.close()


def test_synthesize_batch_reports_a_bad_text_and_renders_the_others(greedy: IndexTTSEngine) -> None:
    results = greedy.synthesize_batch(["!!! ???", TEXTS[0]], greedy.voices()[0])
    assert isinstance(results[0], EngineError) and "Nothing to speak" in str(results[0])
    assert results[1] == alone(greedy, TEXTS[0])
    assert greedy.synthesize_batch([], greedy.voices()[0]) == []


def test_speculative_engine_speaks_the_fp32_audio(greedy: IndexTTSEngine, tiny_model_dir: Path, voices_dir: Path, conditioning_dir: Path) -> None:
    fast = load(tiny_model_dir, voices_dir, conditioning_dir, replace(GREEDY, speculative=3))
    try:
        assert {"gpt", "gpt_int8"} <= set(fast.model.created)
        voice = fast.voices()[0]
        # greedy speculative decoding is exact, so its cached audio stays valid
        assert voice.fingerprint == greedy.voices()[0].fingerprint
        for text in TEXTS:
            assert alone(fast, text) == alone(greedy, text)
    finally:
        fast.close()


def test_speculative_sampling_has_its_own_fingerprint() -> None:
    """Same distribution, other draws for a seed: seeded sampled audio differs, so does the key."""
    sampled = replace(GREEDY, do_sample=True)
    assert sampled.audio_key() != replace(sampled, speculative=3).audio_key()
    assert GREEDY.audio_key() == replace(GREEDY, speculative=3).audio_key()


@pytest.mark.parametrize(
    "fields,message",
    [({"speculative": -1}, "must not be negative"), ({"speculative": 2, "int8": True}, "does not combine with int8")],
)
def test_speculative_option_checks(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IndexTTSOptions(**fields)
