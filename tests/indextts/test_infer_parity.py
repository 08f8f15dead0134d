"""End to end through the official ``IndexTTS2.infer`` itself against ``IndexTTSEngine``.

``IndexTTS2.__init__`` and ``infer`` run unmodified on the tiny official files, with the
stand-ins listed in tests/indextts/official_infer.py (torchaudio, hub downloads, nemo,
the Qwen emotion model). infer always samples and always runs 25 diffusion steps at CFG 0.7;
it is called with one beam (its default is 3; the engine has no beam search) and its
torch.multinomial / torch.randn draws are answered from the numpy generator the engine uses
with the same seed. Then the text segments, the codes of every segment and the int16 audio
must match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.indextts.conftest import TinyCheckpoints, snr_db, voiced_clip, write_clip  # noqa: E402
from tests.indextts.official_infer import build_official_indextts2, draws_from  # noqa: E402
from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions  # noqa: E402
from wyoming_indextts.engines.indextts.pipeline import to_pcm16  # noqa: E402
from wyoming_indextts.engines.indextts.format import SAMPLE_RATE  # noqa: E402
from wyoming_indextts.engines.indextts.gpt import trim_codes  # noqa: E402

pytestmark = pytest.mark.slow

TEXT = "The washing machine has finished its cycle today."
"""Plain words: the nemo stand-in (identity) is then what nemo itself would do."""
SEED = 6
"""With this seed no segment's sampling stops at once on the tiny GPT (the official infer
fails on a segment without codes; the engine leaves it out)."""
CLIP_RATE = 24000
MAX_MEL_TOKENS = 40
SEGMENT_TOKENS = 10
STOP_MEL_TOKEN = 8193

PCM_SNR_DB = 60.0
"""int16 audio, engine vs official infer (float32 error and int16 rounding). A wrong input
costs far more: test_parity_sensitivity keeps CFG 0, content, style, prompt mel and another
emotion vector under 42 dB."""


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("infer-voices")
    path = write_clip(folder / "lena.wav", voiced_clip(2.6, CLIP_RATE, seed=4), CLIP_RATE)
    (folder / "lena.yaml").write_text("description: Lena\nlanguages: [en]\n")
    return path


@pytest.fixture(scope="module")
def official_tts(tiny_checkpoints: TinyCheckpoints, tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield build_official_indextts2(tiny_checkpoints, tmp_path_factory.mktemp("official-cfg"), monkeypatch)


def official_infer(tts, clip: Path, seed: int, **kwargs) -> tuple[np.ndarray, list[list[int]], list[np.ndarray]]:
    """``tts.infer`` with the draws of ``default_rng(seed)``; returns its int16 samples and,
    recorded on the way (calls pass through unchanged), each segment's text ids and codes."""
    texts: list[list[int]] = []
    codes: list[np.ndarray] = []
    inference_speech = tts.gpt.inference_speech

    def recording(speech_condition, text_tokens, *args, **kw):
        out = inference_speech(speech_condition, text_tokens, *args, **kw)
        texts.append(text_tokens[0].tolist())
        codes.append(out[0][0].numpy().copy())
        return out

    tts.gpt.inference_speech = recording
    try:
        with draws_from(np.random.default_rng(seed)):
            rate, samples = tts.infer(
                str(clip), TEXT, None, num_beams=1, max_mel_tokens=MAX_MEL_TOKENS,
                max_text_tokens_per_segment=SEGMENT_TOKENS, **kwargs,
            )  # fmt: skip
    finally:
        del tts.gpt.inference_speech
    assert rate == SAMPLE_RATE
    return samples.reshape(-1), texts, codes


def engine_speech(tiny_model_dir: Path, clip: Path, workdir: Path, options: IndexTTSOptions):
    engine = IndexTTSEngine.load(tiny_model_dir, clip.parent, workdir, options)
    try:
        voice = engine.voices()[0]
        segments = engine.text_segments(TEXT)
        rng = np.random.default_rng(options.seed)  # what synthesize() starts a sentence from
        results = [engine.render(ids, voice, rng=rng) for ids in segments]
        pcm = b"".join(engine.synthesize(TEXT, voice))
    finally:
        engine.close()
    return segments, results, np.frombuffer(pcm, dtype="<i2")


@pytest.mark.parametrize(
    "emotion,strength",
    [(None, 1.0), ((0.0, 0.0, 0.6, 0.0, 0.0, 0.2, 0.0, 0.1), 0.7)],
    ids=["clip-emotion", "emotion-vector"],
)
def test_engine_matches_official_infer(
    official_tts, tiny_model_dir: Path, clip: Path, tmp_path: Path, emotion, strength: float
) -> None:
    seed = SEED
    kwargs = {} if emotion is None else {"emo_vector": list(emotion), "emo_alpha": strength}
    expected, texts, codes = official_infer(official_tts, clip, seed, **kwargs)

    options = IndexTTSOptions(
        seed=seed, max_mel_tokens=MAX_MEL_TOKENS, max_text_tokens_per_segment=SEGMENT_TOKENS,
        emotion=emotion, emotion_strength=strength,
    )  # fmt: skip
    assert (options.do_sample, options.diffusion_steps, options.cfg_rate) == (True, 25, 0.7)  # infer's fixed values
    segments, results, pcm = engine_speech(tiny_model_dir, clip, tmp_path, options)
    assert len(segments) >= 2 and segments == texts
    for mine, theirs in zip(results, codes, strict=True):
        np.testing.assert_array_equal(mine.codes, trim_codes(theirs, STOP_MEL_TOKEN))
    rendered = b"".join(
        part for i, r in enumerate(results)
        for part in ([b"\x00\x00" * int(SAMPLE_RATE * 0.2), to_pcm16(r.wav)] if i else [to_pcm16(r.wav)])
    )  # fmt: skip
    assert np.array_equal(np.frombuffer(rendered, dtype="<i2"), pcm)  # synthesize() streams the same
    assert pcm.shape == expected.shape and np.abs(expected).max() > 300
    assert snr_db(pcm, expected) >= PCM_SNR_DB, snr_db(pcm, expected)
