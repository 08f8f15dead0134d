"""Stage by stage: text + clip → infer_v2's steps vs IndexTTSEngine, greedy decoding.

test_infer_parity runs the official ``IndexTTS2.infer`` itself (which always samples); this
file writes its steps out with the official modules, so that greedy decoding, the latents,
the mel and the waveform of every segment are compared one by one: `_load_and_cut_audio`
(librosa), torchaudio's Resample (ported in official_infer.py, torch code), `_get_speaker_conditioning`,
`_get_emotion_conditioning`, then per segment `merge_emovec`, `inference_speech` (greedy),
the GPT forward, s2mel and BigVGAN. Two stand-ins, as in the acoustic tests: the w2v-BERT
feature extractor is transformers' `SeamlessM4TFeatureExtractor` built locally, and the Kaldi
fbank for CAMPPlus is the runtime's (torchaudio has no CPU build here; the fbank has its own
parity test). Same text ids, same diffusion noise (the noise the engine drew from its seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from omegaconf import OmegaConf  # noqa: E402

from tests.indextts.conftest import TinyCheckpoints, cosine, snr_db, voiced_clip, write_clip  # noqa: E402
from tests.indextts.official_infer import torchaudio_resample  # noqa: E402
from wyoming_indextts.engines.base import EngineError  # noqa: E402
from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions  # noqa: E402
from wyoming_indextts.engines.indextts.pipeline import to_pcm16  # noqa: E402
from wyoming_indextts.engines.indextts.features import campplus_features  # noqa: E402

pytestmark = pytest.mark.slow

CLIP_RATE = 24000
CLIP_SECONDS = 2.6
TEXT = "The washing machine has finished its cycle today."
"""Greedy decoding on the tiny GPT gives 0-2 codes per segment here: one segment stops at once
(the engine leaves it out), the others are compared."""
SNR_DB = 60.0
"""Latents, mel, waveform and int16 audio against the official steps (float32 error; a wrong
input costs far more: see test_parity_sensitivity and the bars in test_acoustic_parity)."""
OPTIONS = IndexTTSOptions(
    do_sample=False, seed=21, diffusion_steps=4, cfg_rate=0.7, max_mel_tokens=48, max_text_tokens_per_segment=10
)


@dataclass
class Official:
    gpt: object
    acoustic: object
    emo_matrix: tuple
    spk_matrix: tuple
    emo_num: list


@dataclass
class OfficialVoice:
    spk_cond_emb: torch.Tensor
    emo_cond_emb: torch.Tensor
    style: torch.Tensor
    prompt_condition: torch.Tensor
    ref_mel: torch.Tensor


@pytest.fixture(scope="module")
def official(tiny_checkpoints: TinyCheckpoints, tiny_model_dir: Path) -> Official:
    from wyoming_indextts.export.official_acoustic import AcousticSources, load_official_acoustic
    from wyoming_indextts.export.gpt import load_unified_voice

    ck = tiny_checkpoints.checkpoints
    cfg = OmegaConf.load(ck / "config.yaml")
    gpt = load_unified_voice(cfg.gpt, ck / cfg.gpt_checkpoint)
    acoustic = load_official_acoustic(
        cfg,
        AcousticSources(
            s2mel_checkpoint=ck / "s2mel.pth",
            w2v_stats=ck / "wav2vec2bert_stats.pt",
            w2v_bert_dir=tiny_checkpoints.w2v_bert,
            semantic_codec=tiny_checkpoints.semantic_codec,
            campplus=tiny_checkpoints.campplus,
            bigvgan_dir=tiny_checkpoints.bigvgan,
        ),
    )
    emo_num = list(cfg.emo_num)
    emo_matrix = torch.split(torch.load(ck / cfg.emo_matrix.strip()), emo_num)
    spk_matrix = torch.split(torch.load(ck / cfg.spk_matrix.strip()), emo_num)
    return Official(gpt, acoustic, emo_matrix, spk_matrix, emo_num)


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("voices")
    write_clip(folder / "lena.wav", voiced_clip(CLIP_SECONDS, CLIP_RATE, seed=4), CLIP_RATE)
    (folder / "lena.yaml").write_text("description: Lena\nlanguages: [en, zh]\n")
    return folder


@pytest.fixture(scope="module")
def conditioning_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conditioning")


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path, voices_dir: Path, conditioning_dir: Path) -> IndexTTSEngine:
    engine = IndexTTSEngine.load(tiny_model_dir, voices_dir, conditioning_dir, OPTIONS)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def ref_voice(official: Official, voices_dir: Path) -> OfficialVoice:
    return official_voice(official, voices_dir / "lena.wav")


def official_voice(official: Official, clip: Path) -> OfficialVoice:
    """`_get_speaker_conditioning` + `_get_emotion_conditioning` of infer_v2."""
    import librosa
    from transformers import SeamlessM4TFeatureExtractor

    from wyoming_indextts.export import official_package

    official_package()
    from indextts.s2mel.modules.audio import mel_spectrogram

    off = official.acoustic
    extract = SeamlessM4TFeatureExtractor(padding_value=1.0)

    def get_emb(wav16: torch.Tensor) -> torch.Tensor:
        inputs = extract(wav16, sampling_rate=16000, return_tensors="pt")
        hidden = off.semantic_model(
            input_features=inputs["input_features"], attention_mask=inputs["attention_mask"], output_hidden_states=True
        ).hidden_states[17]
        return (hidden - off.semantic_mean) / off.semantic_std

    with torch.no_grad():
        audio, sr = librosa.load(str(clip))
        audio = torch.tensor(audio).unsqueeze(0)[:, : int(15 * sr)]
        audio_22k = torchaudio_resample(audio, sr, 22050)
        audio_16k = torchaudio_resample(audio, sr, 16000)
        spk_cond_emb = get_emb(audio_16k)
        _, s_ref = off.semantic_codec.quantize(spk_cond_emb)
        ref_mel = mel_spectrogram(
            audio_22k.float(), n_fft=1024, num_mels=80, sampling_rate=22050, hop_size=256, win_size=1024, fmin=0, fmax=None
        )
        style = off.campplus(torch.from_numpy(campplus_features(audio_16k[0].numpy())))
        prompt_condition = off.s2mel.models["length_regulator"](
            s_ref, ylens=torch.LongTensor([ref_mel.size(2)]), n_quantizers=3, f0=None
        )[0]
        emo_audio, _ = librosa.load(str(clip), sr=16000)
        emo_audio = torch.tensor(emo_audio).unsqueeze(0)[:, : int(15 * 16000)]
        emo_cond_emb = get_emb(emo_audio)
    return OfficialVoice(spk_cond_emb, emo_cond_emb, style, prompt_condition, ref_mel)


def official_emovec(official: Official, voice: OfficialVoice, emo_vector: list[float] | None, emo_alpha: float):
    """infer_generator's emotion handling (no emotion clip: the speaker clip, alpha 1)."""
    from wyoming_indextts.export import official_package

    official_package()
    from indextts.emotion import find_most_similar_cosine

    spk, emo = voice.spk_cond_emb, voice.emo_cond_emb
    with torch.no_grad():
        if emo_vector is not None:
            scale = max(0.0, min(1.0, emo_alpha))
            if scale != 1.0:
                emo_vector = [int(x * scale * 10000) / 10000 for x in emo_vector]
        emovec = official.gpt.merge_emovec(spk, emo, torch.tensor([spk.shape[-1]]), torch.tensor([emo.shape[-1]]), alpha=1.0)
        if emo_vector is not None:
            weight_vector = torch.tensor(emo_vector)
            index = [find_most_similar_cosine(voice.style, tmp) for tmp in official.spk_matrix]
            rows = torch.cat([tmp[i].unsqueeze(0) for i, tmp in zip(index, official.emo_matrix)], 0)
            emovec_mat = torch.sum(weight_vector.unsqueeze(1) * rows, 0).unsqueeze(0)
            emovec = emovec_mat + (1 - torch.sum(weight_vector)) * emovec
    return emovec


def official_segment(official: Official, voice: OfficialVoice, ids: list[int], emovec, noise: np.ndarray, options: IndexTTSOptions):
    """One segment of infer_generator with greedy decoding and the given diffusion noise."""
    gpt, off = official.gpt, official.acoustic
    spk, emo = voice.spk_cond_emb, voice.emo_cond_emb
    text_tokens = torch.tensor(ids, dtype=torch.int32).unsqueeze(0)
    with torch.no_grad():
        codes, speech_latent = gpt.inference_speech(
            spk,
            text_tokens,
            emo,
            cond_lengths=torch.tensor([spk.shape[-1]]),
            emo_cond_lengths=torch.tensor([emo.shape[-1]]),
            emo_vec=emovec,
            do_sample=False,
            num_beams=1,
            repetition_penalty=options.repetition_penalty,
            max_generate_length=options.max_mel_tokens,
        )
        code = codes[0]
        if gpt.stop_mel_token in code:
            code = code[: (code == gpt.stop_mel_token).nonzero()[0, 0]]
        codes = code[None]
        if codes.shape[-1] == 0:  # stopped at once: infer_v2 would fail on it, the engine skips it
            return codes[0].numpy(), None, None, None, None
        code_lens = torch.LongTensor([codes.shape[-1]])
        latent = gpt(
            speech_latent,
            text_tokens,
            torch.tensor([text_tokens.shape[-1]]),
            codes,
            torch.tensor([codes.shape[-1]]),
            emo,
            cond_mel_lengths=torch.tensor([spk.shape[-1]]),
            emo_cond_mel_lengths=torch.tensor([emo.shape[-1]]),
            emo_vec=emovec,
            use_speed=torch.zeros(1).long(),
        )
        gpt_latent = latent.clone()
        latent = off.s2mel.models["gpt_layer"](latent)
        s_infer = off.semantic_codec.quantizer.vq2emb(codes.unsqueeze(1)).transpose(1, 2) + latent
        target_lengths = (code_lens * 1.72).long()
        cond = off.s2mel.models["length_regulator"](s_infer, ylens=target_lengths, n_quantizers=3, f0=None)[0]
        cat_condition = torch.cat([voice.prompt_condition, cond], dim=1)
        cfm = off.s2mel.models["cfm"]
        z = torch.from_numpy(noise).clone()
        assert z.shape == (1, 80, cat_condition.size(1))
        t_span = torch.linspace(0, 1, options.diffusion_steps + 1)
        vc_target = cfm.solve_euler(
            z, torch.LongTensor([cat_condition.size(1)]), voice.ref_mel, cat_condition, voice.style, None, t_span,
            options.cfg_rate,
        )  # fmt: skip
        vc_target = vc_target[:, :, voice.ref_mel.size(-1) :]
        wav = off.bigvgan(vc_target.float()).squeeze().unsqueeze(0).squeeze(1)
        wav = torch.clamp(wav, -1.0, 1.0)
        pcm = (wav.float() * 32767).clamp(-32767, 32767).to(torch.int16)
    return codes[0].numpy(), gpt_latent.numpy(), vc_target.numpy(), wav[0].numpy(), pcm[0].numpy()


def test_voice_is_advertised(engine: IndexTTSEngine) -> None:
    (voice,) = engine.voices()
    assert voice.name == "lena" and voice.engine == "indextts" and voice.sample_rate == 22050
    assert voice.languages == ("en", "zh") and voice.description == "Lena"
    assert len(voice.fingerprint) == 64


def test_text_to_speech_matches_official_pipeline(
    engine: IndexTTSEngine, official: Official, ref_voice: OfficialVoice
) -> None:
    voice = engine.voices()[0]
    segments = engine.text_segments(TEXT)
    assert len(segments) >= 2  # long text is cut and streamed per segment
    loaded = engine._voices[voice.name]
    assert cosine(loaded.conditioning.ref_mel, ref_voice.ref_mel.numpy()) >= 0.999
    assert cosine(loaded.conditioning.prompt_condition, ref_voice.prompt_condition.numpy()) >= 0.999
    assert cosine(loaded.conditioning.style, ref_voice.style.numpy()) >= 0.999
    emovec = official_emovec(official, ref_voice, None, 1.0)
    assert cosine(engine.emovec(voice), emovec.numpy()) >= 0.999

    rng = np.random.default_rng(OPTIONS.seed)  # what synthesize() starts every sentence from
    expected_pcm: list[bytes] = []
    total_codes = 0
    for ids in segments:
        mine = engine.render(ids, voice, rng=rng)
        codes, latent, mel, wav, pcm = official_segment(official, ref_voice, ids, emovec, mine.noise, OPTIONS)
        np.testing.assert_array_equal(mine.codes, codes)
        if codes.size == 0:
            assert mine.wav.size == 0  # nothing to say: synthesize() leaves the segment out
            continue
        total_codes += codes.size
        assert snr_db(mine.latents, latent) >= SNR_DB
        assert mine.mel.shape == mel.shape
        assert snr_db(mine.mel, mel) >= SNR_DB, snr_db(mine.mel, mel)
        assert mine.wav.shape == wav.shape and np.abs(wav).max() > 1e-3
        assert snr_db(mine.wav, wav) >= SNR_DB, snr_db(mine.wav, wav)
        assert snr_db(np.frombuffer(to_pcm16(mine.wav), dtype="<i2"), pcm) >= SNR_DB
        expected_pcm.append(to_pcm16(mine.wav))
    assert total_codes > 5

    chunks = list(engine.synthesize(TEXT, voice))
    silence = b"\x00\x00" * int(22050 * OPTIONS.interval_silence_ms / 1000)
    assert chunks == [part for i, pcm in enumerate(expected_pcm) for part in ([silence, pcm] if i else [pcm])]


def test_emotion_vector_option_matches_official(
    engine: IndexTTSEngine,
    official: Official,
    ref_voice: OfficialVoice,
    voices_dir: Path,
    tiny_model_dir: Path,
    conditioning_dir: Path,
) -> None:
    weights = (0.0, 0.0, 0.6, 0.0, 0.0, 0.2, 0.0, 0.1)
    options = IndexTTSOptions(**{**OPTIONS.__dict__, "emotion": weights, "emotion_strength": 0.7})
    # the conditioning does not depend on options: the stored voice is reused as it is
    emotional = IndexTTSEngine.load(tiny_model_dir, voices_dir, conditioning_dir, options)
    try:
        assert "w2v_bert" not in emotional.model.created
        voice = emotional.voices()[0]
        assert voice.fingerprint != engine.voices()[0].fingerprint
        expected = official_emovec(official, ref_voice, list(weights), 0.7)
        assert cosine(emotional.emovec(voice), expected.numpy()) >= 0.999
        ids = emotional.text_segments(TEXT)[1]  # the first stops at once, greedy
        mine = emotional.render(ids, voice, rng=np.random.default_rng(1))
        codes, latent, *_ = official_segment(official, ref_voice, ids, expected, mine.noise, options)
        np.testing.assert_array_equal(mine.codes, codes)
        assert codes.size > 0
        assert snr_db(mine.latents, latent) >= SNR_DB
    finally:
        emotional.close()


def test_seeded_sampling_is_reproducible(tiny_model_dir: Path, voices_dir: Path, tmp_path: Path) -> None:
    options = IndexTTSOptions(seed=5, diffusion_steps=2, max_mel_tokens=25, top_k=30, top_p=0.8, temperature=0.8)
    sampled = IndexTTSEngine.load(tiny_model_dir, voices_dir, tmp_path, options)
    try:
        voice = sampled.voices()[0]
        first = b"".join(sampled.synthesize("Hello there.", voice))
        again = b"".join(sampled.synthesize("Hello there.", voice))
        assert first == again and len(first) > 0
        assert len(first) % 2 == 0
    finally:
        sampled.close()


@pytest.mark.parametrize("text", ["", "   ", "!!! ... ???", "😀😀"])
def test_unspeakable_text_is_an_engine_error(engine: IndexTTSEngine, text: str) -> None:
    with pytest.raises(EngineError, match="Nothing to speak"):
        list(engine.synthesize(text, engine.voices()[0]))


def test_unknown_voice_is_an_engine_error(engine: IndexTTSEngine) -> None:
    from wyoming_indextts.engines.base import Voice

    stranger = Voice(name="nobody", engine="indextts", sample_rate=22050, languages=("en",))
    with pytest.raises(EngineError, match="no voice 'nobody'"):
        list(engine.synthesize("Hello.", stranger))


def test_int8_option(
    engine: IndexTTSEngine, tiny_model_dir: Path, voices_dir: Path, conditioning_dir: Path, tmp_path: Path
) -> None:
    import json

    from tests.indextts.conftest import copy_model_dir
    from wyoming_indextts.engines.indextts import ModelError

    options = IndexTTSOptions(**{**OPTIONS.__dict__, "int8": True})
    fast = IndexTTSEngine.load(tiny_model_dir, voices_dir, conditioning_dir, options)
    try:
        created = set(fast.model.created)
        assert {"gpt_int8", "s2mel_estimator_int8"} <= created
        assert not {"gpt", "s2mel_estimator"} & created
        voice = fast.voices()[0]
        assert voice.fingerprint != engine.voices()[0].fingerprint
        assert len(b"".join(fast.synthesize(TEXT, voice))) > 0
    finally:
        fast.close()

    # A folder exported without --int8 (either int8 graph missing) says how to get them.
    for graph in ("gpt_int8", "s2mel_estimator_int8"):
        plain = copy_model_dir(tiny_model_dir, tmp_path / graph)
        manifest = json.loads((plain / "manifest.json").read_text())
        del manifest["graphs"][graph], manifest["files"][f"{graph}.onnx"]
        (plain / "manifest.json").unlink()
        (plain / "manifest.json").write_text(json.dumps(manifest))
        (plain / f"{graph}.onnx").unlink()
        with pytest.raises(ModelError, match=f"has no {graph}.onnx.*--int8"):
            IndexTTSEngine.load(plain, voices_dir, tmp_path / "cond", options)
