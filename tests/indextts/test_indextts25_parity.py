"""IndexTTS-2.5: the exported model folder on ONNX Runtime against the official ``indextts25``
code (``infer_v2_5.IndexTTS2``, built unmodified from the tiny official folder).

Token ids come from the official tokenizer (the text side is ported separately); the runtime
takes ids and a language. Checked: voice conditioning, greedy codes (identical, per language),
the codec decoder, the length regulator at two speech rates, the mel and the waveform, and
the official ``infer`` end to end (its draws answered from the runtime's numpy generator).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("indextts25")

from tests.indextts.conftest import cosine, snr_db, voiced_clip, write_clip  # noqa: E402
from tests.indextts.official_infer import draws_from  # noqa: E402
from wyoming_indextts.engines.indextts.codec import duration_factor  # noqa: E402
from wyoming_indextts.engines.indextts.conditioning import AcousticConditioner, load_mel_settings  # noqa: E402
from wyoming_indextts.engines.indextts.gpt import trim_codes  # noqa: E402
from wyoming_indextts.engines.indextts.model import IndexTTSModel  # noqa: E402
from wyoming_indextts.engines.indextts.options import IndexTTSOptions  # noqa: E402
from wyoming_indextts.engines.indextts.pipeline25 import Pipeline25  # noqa: E402
from wyoming_indextts.engines.indextts.text.frontend25 import LanguageIds  # noqa: E402
from wyoming_indextts.engines.indextts.preparation import condition_voice25  # noqa: E402
from wyoming_indextts.engines.indextts.voice import prepare_clip_audio, read_clip  # noqa: E402

pytestmark = pytest.mark.slow

CLIP_RATE = 24000
TEXTS = {"en": "hello world! the weather today", "zh": "今天天气很好"}
""""!" is id 0, the start id too: 2.5 keeps it in the text (2.0 dropped it)."""
STEPS = 3
MAX_CODES = 60
COSINE = 0.999
STOP = 8193


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("voices25")
    return write_clip(folder / "mia.wav", voiced_clip(1.6, CLIP_RATE, seed=7), CLIP_RATE)


@pytest.fixture(scope="module")
def official(tiny25_checkpoints: Path):
    from indextts25.infer_v2_5 import IndexTTS2

    torch.set_num_threads(2)
    return IndexTTS2(cfg_path=str(tiny25_checkpoints / "config.yaml"), model_dir=str(tiny25_checkpoints), device="cpu")


@pytest.fixture(scope="module")
def pipeline(tiny25_model_dir: Path) -> Pipeline25:
    options = IndexTTSOptions(do_sample=False, max_mel_tokens=MAX_CODES, diffusion_steps=STEPS)
    return Pipeline25(IndexTTSModel.open(tiny25_model_dir, threads=2), options)


@pytest.fixture(scope="module")
def voices(official, pipeline: Pipeline25, clip: Path):
    """(official conditioning tensors, the runtime's VoiceConditioning) of the same clip."""
    from indextts25.infer_v2_5 import _audio_key

    key = _audio_key(str(clip))
    with torch.no_grad():
        spk_cond_emb, style, prompt_condition, ref_mel = official._speaker_conditioning(str(clip), key)
        emo_cond_emb = official._emotion_conditioning(str(clip), key)
    samples, rate = read_clip(clip)
    model = pipeline.model
    conditioner = AcousticConditioner(model.session, load_mel_settings(model.path))
    mine = condition_voice25(model, conditioner, prepare_clip_audio(samples, rate))
    return (spk_cond_emb, emo_cond_emb, style, prompt_condition, ref_mel), mine


def greedy_codes(pipeline: Pipeline25, voice, ids: list[int], language: str) -> np.ndarray:
    raw = pipeline.codes(pipeline.prefix(voice), LanguageIds(ids, language), np.random.default_rng(0))
    return trim_codes(raw, STOP)


def official_ids(official, text: str, language: str) -> list[int]:
    prepared = official._prepare_text(text, language, text_normalization=False)
    return official.tokenizer.encode(f"<|{language}|> " + prepared, allowed_special="all")


def official_emovec(official, spk_cond_emb, emo_cond_emb) -> torch.Tensor:
    lengths = torch.tensor([spk_cond_emb.shape[-1]])
    return official.gpt.merge_emovec(spk_cond_emb, emo_cond_emb, lengths, lengths, alpha=1.0)


def test_voice_conditioning_matches(official, voices) -> None:
    (spk_cond_emb, emo_cond_emb, style, prompt_condition, ref_mel), mine = voices
    lengths = torch.tensor([1024])
    with torch.no_grad():
        expected = {
            "speaker_latents": official.gpt.spk_emb_proj(style)[None],
            "emovec_speaker": official.gpt.get_emovec(spk_cond_emb, lengths),
            "emovec_emotion": official.gpt.get_emovec(emo_cond_emb, lengths),
            "style": style,
            "prompt_condition": prompt_condition,
            "ref_mel": ref_mel,
        }
    for name, value in expected.items():
        theirs = value.numpy()
        ours = getattr(mine, name)
        assert ours.shape == theirs.shape, name
        assert cosine(ours, theirs) >= COSINE, (name, cosine(ours, theirs))


@pytest.mark.parametrize("language", sorted(TEXTS))
def test_gpt_prompt_matches(official, pipeline: Pipeline25, voices, language: str) -> None:
    """The assembled GPT input (prefix, text ids with start/stop, text positions, language
    embedding) against ``prepare_gpt_inputs``: the tiny GPT's greedy codes hardly react to one
    text id, so the prompt is compared directly."""
    _, mine = voices
    from indextts25.utils.tokenizer import lang_to_token

    ids = official_ids(official, TEXTS[language], language)
    prefix = pipeline.prefix(mine)
    with torch.no_grad():
        _, theirs, _ = official.gpt.prepare_gpt_inputs(
            torch.from_numpy(prefix), torch.IntTensor([ids]), torch.LongTensor([lang_to_token(language)])
        )
    ours = pipeline.gpt.prompt_embeddings25(prefix, ids, pipeline.gpt.language_id(language))
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("language", sorted(TEXTS))
def test_greedy_codes_identical(official, pipeline: Pipeline25, voices, language: str) -> None:
    (spk_cond_emb, emo_cond_emb, style, *_), mine = voices
    ids = official_ids(official, TEXTS[language], language)
    from indextts25.utils.tokenizer import lang_to_token

    with torch.no_grad():
        raw = official.gpt.inference_speech(
            torch.IntTensor(ids)[None], torch.LongTensor([lang_to_token(language)]),
            official_emovec(official, spk_cond_emb, emo_cond_emb), style,
            max_generate_length=MAX_CODES, do_sample=False, num_beams=1, repetition_penalty=10.0,
        )  # fmt: skip
    theirs = trim_codes(raw[0].numpy(), STOP)
    ours = greedy_codes(pipeline, mine, ids, language)
    assert len(theirs) >= 8, "the tiny GPT should speak a while before it stops"
    np.testing.assert_array_equal(ours, theirs)
    # The language id is an input that matters: another language gives other codes.
    other = "ja" if language != "ja" else "en"
    assert not np.array_equal(greedy_codes(pipeline, mine, ids, other), ours)


@pytest.mark.parametrize("speed", [1.0, 1.25])
def test_acoustic_stages_match(official, pipeline: Pipeline25, voices, speed: float) -> None:
    """Codec decode, length regulator at the speech rate, s2mel and BigVGAN on the same codes."""
    (_, _, style, prompt_condition, ref_mel), mine = voices
    # 29 codes: 58 codec frames → int(58 * 1.72) = 99 mel frames, where 1.73 would give 100.
    codes = np.random.default_rng(3).integers(0, 8192, size=(1, 29))
    factor = duration_factor(speed)
    with torch.no_grad():
        features = official.semantic_codec.decode(torch.from_numpy(codes))
        target = torch.LongTensor([int(features.shape[1] * 1.72 * factor)])
        cond = official.s2mel.models["length_regulator"](features, ylens=target)
        mu = torch.cat([prompt_condition, cond], dim=1)
        torch.manual_seed(11)
        noise = torch.randn([1, 80, mu.shape[1]])
        torch.manual_seed(11)
        mel = official.s2mel.models["cfm"].inference(
            mu, torch.LongTensor([mu.size(1)]), ref_mel, style, None, STEPS, inference_cfg_rate=0.7
        )[:, :, ref_mel.size(-1):]  # fmt: skip
        wav = official.bigvgan(mel.float()).squeeze()
    ours = pipeline.render(LanguageIds([], "en"), mine, raw_codes=codes[0], noise=noise.numpy(), speed=speed)
    condition = pipeline.decoder.regulate(ours.latents, factor)
    assert ours.latents.shape == tuple(features.shape) == (1, 58, 1024)
    assert condition.shape == tuple(cond.shape)
    for name, value, theirs in (("features", ours.latents, features), ("condition", condition, cond), ("mel", ours.mel, mel), ("wav", ours.wav, wav)):
        assert cosine(value, theirs.numpy()) >= COSINE, (name, cosine(value, theirs.numpy()))
    assert snr_db(ours.wav, wav.numpy()) >= 40.0


def test_official_infer_end_to_end(official, pipeline: Pipeline25, voices, clip: Path) -> None:
    """``IndexTTS2.infer`` (greedy, 1 beam, speech rate 1.25) against the runtime's stages."""
    _, mine = voices
    language, speed = "en", 1.25
    rng_seed = 5
    with draws_from(np.random.default_rng(rng_seed)):
        rate, samples = official.infer(
            str(clip), TEXTS[language], None, language, do_sample=False, num_beams=1, text_normalization=False,
            diffusion_steps=STEPS, max_mel_tokens=MAX_CODES, duration_factor=duration_factor(speed),
        )  # fmt: skip
    expected = samples.reshape(-1).astype(np.float64)
    ids = official_ids(official, TEXTS[language], language)
    rendered = pipeline.render(LanguageIds(ids, language), mine, rng=np.random.default_rng(rng_seed), speed=speed)
    pcm = np.clip(32767 * rendered.wav, -32767.0, 32767.0).astype(np.int16)
    assert rate == 22050 and pcm.shape == expected.shape and np.abs(expected).max() > 300
    assert cosine(pcm, expected) >= COSINE
