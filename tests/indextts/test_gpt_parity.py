"""The exported GPT graphs + numpy decode loop against the official UnifiedVoice.

The official modules are built from `indextts2-inference` at the tiny configuration, saved as
an official checkpoint folder, exported with the project's exporter; then the official
PyTorch code and the runtime run on the same conditioning features and text tokens with
greedy decoding and with sampling (the official draws answered from the runtime's numpy
generator): the codes must be identical, the latents within float32 error (SNR).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from omegaconf import OmegaConf  # noqa: E402

from tests.indextts.conftest import TinyCheckpoints, cosine, snr_db  # noqa: E402
from tests.indextts.official_infer import draws_from  # noqa: E402
from wyoming_indextts.engines.indextts.format import EMOTION_GRAPH, SPEAKER_GRAPH  # noqa: E402
from wyoming_indextts.engines.indextts.format import GPT_GRAPH as CORE_GRAPH  # noqa: E402
from wyoming_indextts.engines.indextts.gpt import (  # noqa: E402
    GPTConfig,
    GPTRuntime,
    apply_emotion_vector,
    emotion_indices,
    merge_emovec,
    scale_emotion_weights,
    trim_codes,
)
from wyoming_indextts.engines.indextts.model import IndexTTSModel  # noqa: E402
from wyoming_indextts.engines.indextts.sampling import (  # noqa: E402
    Sampler,
    SamplingOptions,
    apply_repetition_penalty,
    apply_temperature,
    apply_top_k,
    apply_top_p,
)

pytestmark = pytest.mark.slow

LATENT_SNR_DB = 60.0
"""GPT latents, runtime vs official (float32 error; another emotion vector gives < 30 dB,
test_parity_sensitivity)."""


@pytest.fixture(scope="module")
def official(tiny_checkpoints: TinyCheckpoints):
    """UnifiedVoice loaded from the tiny gpt.pth exactly as infer_v2 loads it."""
    from wyoming_indextts.export.gpt import load_unified_voice

    cfg = OmegaConf.load(tiny_checkpoints.checkpoints / "config.yaml")
    return load_unified_voice(cfg.gpt, tiny_checkpoints.checkpoints / "gpt.pth")


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> IndexTTSModel:
    return IndexTTSModel.open(tiny_model_dir)


@pytest.fixture(scope="module")
def runtime(model: IndexTTSModel) -> GPTRuntime:
    cfg = model.config
    arrays = {name: model.array(file) for name, file in cfg["gpt_arrays"].items()}
    return GPTRuntime(model.session(CORE_GRAPH), arrays, GPTConfig.from_mapping(cfg["gpt"]))


def features(frames: int, seed: int) -> torch.Tensor:
    """Stand-in for normalised w2v-BERT layer-17 features (1, T, 1024)."""
    return torch.randn(1, frames, 1024, generator=torch.Generator().manual_seed(seed))


def official_codes_and_latents(
    official, spk: torch.Tensor, emo: torch.Tensor, text: torch.Tensor, max_tokens: int, min_tokens: int = 0
):
    """infer_v2's GPT steps for one segment (greedy, one beam, repetition penalty 10)."""
    with torch.no_grad():
        lengths = torch.tensor([spk.shape[-1]])
        emo_lengths = torch.tensor([emo.shape[-1]])
        emovec = official.merge_emovec(spk, emo, lengths, emo_lengths, alpha=1.0)
        codes, speech_latent = official.inference_speech(
            spk,
            text,
            emo,
            cond_lengths=lengths,
            emo_cond_lengths=emo_lengths,
            emo_vec=emovec,
            do_sample=False,
            num_beams=1,
            repetition_penalty=10.0,
            max_generate_length=max_tokens,
            **({"min_new_tokens": min_tokens} if min_tokens else {}),
        )
        raw = codes[0].clone()
        code = raw
        if official.stop_mel_token in code:
            code = code[: (code == official.stop_mel_token).nonzero()[0, 0]]
        codes = code[None]
        latent = official(
            speech_latent,
            text,
            torch.tensor([text.shape[-1]]),
            codes,
            torch.tensor([codes.shape[-1]]),
            emo,
            cond_mel_lengths=lengths,
            emo_cond_mel_lengths=emo_lengths,
            emo_vec=emovec,
            use_speed=torch.zeros(1).long(),
        )
    return raw.numpy(), latent.numpy(), emovec.numpy()


def runtime_conditioning(model: IndexTTSModel, spk: torch.Tensor, emo: torch.Tensor):
    (latents,) = model.session(SPEAKER_GRAPH).run(None, {"features": spk.numpy()})
    (base,) = model.session(EMOTION_GRAPH).run(None, {"features": spk.numpy()})
    (emotion,) = model.session(EMOTION_GRAPH).run(None, {"features": emo.numpy()})
    return latents, base, emotion


def test_manifest_lists_gpt_graphs_with_io(model: IndexTTSModel) -> None:
    graphs = model.manifest.graphs
    assert {SPEAKER_GRAPH, EMOTION_GRAPH, CORE_GRAPH} <= set(graphs)
    core = graphs[CORE_GRAPH]
    layers = model.config["gpt"]["layers"]
    assert core.input_names == ("inputs_embeds", "attention_mask", "logit_positions", *[f"past_{kv}_{i}" for i in range(layers) for kv in ("key", "value")])
    assert core.output_names[:2] == ("hidden", "logits")
    assert graphs[SPEAKER_GRAPH].inputs[0]["shape"] == [1, "frames", 1024]


@pytest.mark.parametrize("frames", [57, 131])
def test_conditioning_graphs_match_official(official, model: IndexTTSModel, frames: int) -> None:
    spk = features(frames, seed=frames)
    latents, base, _ = runtime_conditioning(model, spk, spk)
    with torch.no_grad():
        expected = official.get_conditioning(spk.transpose(1, 2), torch.tensor([spk.shape[-1]]))
        expected_emovec = official.get_emovec(spk, torch.tensor([spk.shape[-1]]))
    assert latents.shape == tuple(expected.shape) == (1, 32, 1280)
    assert snr_db(latents, expected.numpy()) >= LATENT_SNR_DB
    np.testing.assert_allclose(latents, expected.numpy(), atol=1e-4, rtol=1e-3)
    assert snr_db(base, expected_emovec.numpy()) >= LATENT_SNR_DB


@pytest.mark.parametrize(
    "text_len,spk_frames,emo_frames,max_tokens,min_tokens,expect_stop",
    [(23, 83, 61, 120, 0, True), (9, 64, 64, 12, 0, False), (23, 83, 61, 70, 60, False)],
)
def test_greedy_codes_identical_and_latents_close(
    official,
    model: IndexTTSModel,
    runtime: GPTRuntime,
    text_len: int,
    spk_frames: int,
    emo_frames: int,
    max_tokens: int,
    min_tokens: int,
    expect_stop: bool,
) -> None:
    spk = features(spk_frames, seed=1)
    emo = features(emo_frames, seed=2)
    text = torch.randint(2, 250, (1, text_len), generator=torch.Generator().manual_seed(text_len), dtype=torch.int32)
    raw, latent, emovec = official_codes_and_latents(official, spk, emo, text, max_tokens, min_tokens)
    assert (raw[-1] == official.stop_mel_token) == expect_stop  # both the stop and the length paths
    assert len(raw) > min_tokens

    latents, base, emotion = runtime_conditioning(model, spk, emo)
    my_emovec = merge_emovec(base, emotion, 1.0)
    assert snr_db(my_emovec, emovec) >= LATENT_SNR_DB
    prefix = runtime.conditioning_prefix(latents, my_emovec)
    mine = runtime.generate(prefix, text[0].numpy(), Sampler(SamplingOptions(do_sample=False)), max_tokens, min_tokens)
    np.testing.assert_array_equal(mine, raw)

    codes = trim_codes(mine, runtime.config.stop_mel_token)
    my_latent = runtime.latents(prefix, text[0].numpy(), codes)
    assert my_latent.shape == latent.shape == (1, codes.shape[0], 1280)
    assert snr_db(my_latent, latent) >= LATENT_SNR_DB


@pytest.mark.parametrize("seed,top_k,top_p,temperature", [(3, 30, 0.8, 0.8), (8, 5, 0.95, 1.3)])
def test_sampled_codes_identical_to_official_sampling(
    official, model: IndexTTSModel, runtime: GPTRuntime, seed: int, top_k: int, top_p: float, temperature: float
) -> None:
    """infer_v2 always samples (do_sample=True): the official ``inference_speech`` with one
    beam, its repetition penalty, temperature, top-k and top-p warpers in transformers' order,
    fed the runtime's random draws, must give the runtime's codes."""
    spk, emo = features(83, seed=1), features(61, seed=2)
    text = torch.randint(2, 250, (1, 19), generator=torch.Generator().manual_seed(seed), dtype=torch.int32)
    max_tokens = 40
    with torch.no_grad(), draws_from(np.random.default_rng(seed)):
        lengths, emo_lengths = torch.tensor([spk.shape[-1]]), torch.tensor([emo.shape[-1]])
        codes, _ = official.inference_speech(
            spk, text, emo, cond_lengths=lengths, emo_cond_lengths=emo_lengths,
            emo_vec=official.merge_emovec(spk, emo, lengths, emo_lengths, alpha=1.0),
            do_sample=True, num_beams=1, top_k=top_k, top_p=top_p, temperature=temperature,
            repetition_penalty=10.0, max_generate_length=max_tokens,
        )  # fmt: skip
    expected = codes[0].numpy()

    latents, base, emotion = runtime_conditioning(model, spk, emo)
    prefix = runtime.conditioning_prefix(latents, merge_emovec(base, emotion, 1.0))
    options = SamplingOptions(top_k=top_k, top_p=top_p, temperature=temperature, seed=seed)
    mine = runtime.generate(prefix, text[0].numpy(), Sampler(options), max_tokens)
    np.testing.assert_array_equal(mine, expected)
    greedy = runtime.generate(prefix, text[0].numpy(), Sampler(SamplingOptions(do_sample=False)), max_tokens)
    assert not np.array_equal(mine[: greedy.size], greedy[: mine.size])  # the draws really steer it


def test_int8_core_stays_close_to_fp32(official, model: IndexTTSModel, runtime: GPTRuntime) -> None:
    """gpt_int8.onnx (--int8): same inputs and outputs, latents within a small distance of fp32."""
    assert model.manifest.graphs["gpt_int8"].input_names == model.manifest.graphs[CORE_GRAPH].input_names
    int8 = GPTRuntime(model.session("gpt_int8"), {
        "text_embedding": runtime.text_embedding, "text_pos_embedding": runtime.text_pos_embedding,
        "mel_embedding": runtime.mel_embedding, "mel_pos_embedding": runtime.mel_pos_embedding,
        "speed_embedding": runtime.speed_embedding,
    }, runtime.config)  # fmt: skip
    spk = features(77, seed=3)
    latents, base, _ = runtime_conditioning(model, spk, spk)
    prefix = runtime.conditioning_prefix(latents, base)
    text = list(range(40, 58))
    codes = trim_codes(runtime.generate(prefix, text, Sampler(SamplingOptions(do_sample=False)), 30), 8193)
    assert codes.size > 0
    assert cosine(int8.latents(prefix, text, codes), runtime.latents(prefix, text, codes)) >= 0.995
    sampled = int8.generate(prefix, text, Sampler(SamplingOptions(seed=1)), 20, min_new_tokens=20)
    assert sampled.shape == (20,) and (sampled < 8192).all()


def test_prompt_drops_start_and_stop_text_ids(runtime: GPTRuntime) -> None:
    cfg = runtime.config
    ids = runtime.prompt_text_ids([cfg.start_text_token, 5, cfg.stop_text_token, 7])
    assert ids.tolist() == [cfg.start_text_token, 5, 7, cfg.stop_text_token]


def test_emotion_vector_path_matches_infer_v2(tiny_checkpoints: TinyCheckpoints, model: IndexTTSModel) -> None:
    """infer_v2's emo_vector branch (find_most_similar_cosine, weighted rows, mix) in torch."""
    from wyoming_indextts.export import official_package

    official_package()
    from indextts.emotion import find_most_similar_cosine

    cfg = OmegaConf.load(tiny_checkpoints.checkpoints / "config.yaml")
    emo_num = list(cfg.emo_num)
    emo_matrix = torch.split(torch.load(tiny_checkpoints.checkpoints / "feat2.pt"), emo_num)
    spk_matrix = torch.split(torch.load(tiny_checkpoints.checkpoints / "feat1.pt"), emo_num)
    generator = torch.Generator().manual_seed(5)
    style = torch.randn(1, 192, generator=generator)
    emovec = torch.randn(1, 1280, generator=generator)
    weights = [0.0, 0.3, 0.0, 0.0, 0.1, 0.0, 0.45, 0.2]
    strength = 0.6
    # infer_v2
    emo_vector = [int(x * strength * 10000) / 10000 for x in weights]
    weight_vector = torch.tensor(emo_vector)
    index = [find_most_similar_cosine(style, tmp) for tmp in spk_matrix]
    rows = torch.cat([tmp[i].unsqueeze(0) for i, tmp in zip(index, emo_matrix)], 0)
    expected = torch.sum(weight_vector.unsqueeze(1) * rows, 0).unsqueeze(0) + (1 - torch.sum(weight_vector)) * emovec
    # runtime
    scaled = scale_emotion_weights(weights, strength)
    assert scaled == emo_vector
    rows_mine = emotion_indices(style.numpy(), model.array("spk_matrix"), emo_num)
    assert rows_mine == [int(i) for i in index]
    mine = apply_emotion_vector(emovec.numpy(), scaled, model.array("emo_matrix"), emo_num, rows_mine)
    np.testing.assert_allclose(mine, expected.numpy(), atol=1e-6, rtol=1e-5)


def test_sampling_warpers_match_transformers() -> None:
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    generator = torch.Generator().manual_seed(11)
    logits = torch.randn(1, 8194, generator=generator) * 3
    seen = torch.tensor([[1, 1, 1, 8192, 17, 42, 17, 4000]])
    expected = RepetitionPenaltyLogitsProcessor(10.0)(seen, logits.clone())
    mine = apply_repetition_penalty(logits[0].numpy(), seen[0].numpy(), 10.0)
    np.testing.assert_array_equal(mine, expected[0].numpy())
    expected = TemperatureLogitsWarper(0.8)(seen, expected)
    mine = apply_temperature(mine, 0.8)
    np.testing.assert_allclose(mine, expected[0].numpy(), rtol=1e-6)
    expected = TopKLogitsWarper(30)(seen, expected)
    mine = apply_top_k(mine, 30)
    np.testing.assert_array_equal(np.isfinite(mine), torch.isfinite(expected[0]).numpy())
    expected = TopPLogitsWarper(0.8)(seen, expected)
    mine = apply_top_p(mine, 0.8)
    np.testing.assert_array_equal(np.isfinite(mine), torch.isfinite(expected[0]).numpy())
    assert 1 <= np.isfinite(mine).sum() <= 30


def test_sampler_is_seeded_and_respects_filters() -> None:
    logits = np.random.default_rng(0).standard_normal(8194).astype(np.float32) * 3
    options = SamplingOptions(top_k=5, top_p=1.0, temperature=1.0, repetition_penalty=1.0, seed=9)
    first = [Sampler(options)(logits, np.array([], dtype=np.int64)) for _ in range(20)]
    again = [Sampler(options)(logits, np.array([], dtype=np.int64)) for _ in range(20)]
    assert first == again
    sampler = Sampler(options)
    draws = {sampler(logits, np.array([], dtype=np.int64)) for _ in range(200)}
    assert draws <= set(np.argsort(logits)[-5:].tolist())
    assert len(draws) > 1
    greedy = Sampler(SamplingOptions(do_sample=False, repetition_penalty=1.0))
    assert greedy(logits, np.array([], dtype=np.int64)) == int(np.argmax(logits))
