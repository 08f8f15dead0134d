"""Speculative and batched GPT decoding, and the int8 graphs, on IndexTTS-2.5 (the tiny
exported model, --int8).

They are 2.0's decoders (`speculative.py`, `batched.py`) running on `GPT25Runtime`, whose
`start` prefills 2.5's prompt (language embedding, 2.5's text filter) and whose
`code_embeddings` put code k at mel position k + 1. Both must be exact: greedy codes equal to
plain 2.5 decoding (`generate` on `LanguageIds`, itself checked against the official code in
test_indextts25_parity.py); batched seeded sampling gives every sentence the codes it gets
alone; the engine's batched and speculative renders give the one-by-one fp32 audio. The int8
graphs are not exact: they must be used and stay close to fp32.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("indextts25")

from tests.indextts.conftest import cosine, voiced_clip, write_clip  # noqa: E402
from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions  # noqa: E402
from wyoming_indextts.engines.indextts.batched import generate_batch  # noqa: E402
from wyoming_indextts.engines.indextts.format import GPT_INT8_GRAPH  # noqa: E402
from wyoming_indextts.engines.indextts.gpt25 import GPT25Runtime  # noqa: E402
from wyoming_indextts.engines.indextts.text.frontend25 import LanguageIds  # noqa: E402
from wyoming_indextts.engines.indextts.model import IndexTTSModel  # noqa: E402
from wyoming_indextts.engines.indextts.pipeline25 import Pipeline25  # noqa: E402
from wyoming_indextts.engines.indextts.sampling import Sampler, SamplingOptions  # noqa: E402
from wyoming_indextts.engines.indextts.speculative import SpeculativeDecoder, SpeculativeStats  # noqa: E402

pytestmark = pytest.mark.slow

GREEDY = SamplingOptions(do_sample=False)
MAX_CODES = 60
CASES = [(1, "en", 23), (2, "zh", 9), (3, "ja", 15)]
"""(seed, language, text length): every case in another language, so a draft or a batch row
that dropped the language embedding would decode other codes."""


@pytest.fixture(scope="module")
def pipeline(tiny25_model_dir: Path) -> Pipeline25:
    return Pipeline25(IndexTTSModel.open(tiny25_model_dir, threads=2), IndexTTSOptions(do_sample=False))


def runtime(pipeline: Pipeline25, graph: str, noisy_codes: bool = False) -> GPT25Runtime:
    """A 2.5 runtime on `graph`; `noisy_codes`: code embeddings blurred, a draft that is often
    wrong, so the rejection path runs (exactness must not depend on a good draft)."""
    model = pipeline.model
    arrays = {name: model.array(file) for name, file in model.config["gpt_arrays"].items()}
    if noisy_codes:
        noise = np.random.default_rng(7).standard_normal(arrays["mel_embedding"].shape).astype(np.float32)
        arrays["mel_embedding"] = arrays["mel_embedding"] + noise * 3 * arrays["mel_embedding"].std()
    return GPT25Runtime(model.session(graph), arrays, pipeline.gpt.config, model.config["gpt"]["languages"])


def sentence(gpt: GPT25Runtime, seed: int, language: str, length: int) -> tuple[np.ndarray, LanguageIds]:
    rng = np.random.default_rng(seed)
    dim = gpt.config.model_dim
    speaker = rng.standard_normal((1, 1, dim)).astype(np.float32)
    emovec = (rng.standard_normal((1, dim)) * 0.1).astype(np.float32)
    return gpt.conditioning_prefix(speaker, emovec), LanguageIds(rng.integers(2, 250, length).tolist(), language)


def plain(gpt: GPT25Runtime, prefix: np.ndarray, ids: LanguageIds, sampler: Sampler) -> np.ndarray:
    return gpt.generate(prefix, ids, sampler, MAX_CODES)


@pytest.mark.parametrize(("noisy_draft", "k"), [(False, 4), (True, 2)], ids=["int8-draft", "noisy-draft"])
@pytest.mark.parametrize("case", CASES)
def test_speculative_greedy_codes_equal_plain_25(pipeline: Pipeline25, noisy_draft: bool, k: int, case) -> None:
    gpt = pipeline.gpt
    prefix, ids = sentence(gpt, *case)
    expected = plain(gpt, prefix, ids, Sampler(GREEDY))
    stats = SpeculativeStats()
    decoder = SpeculativeDecoder(gpt, runtime(pipeline, GPT_INT8_GRAPH, noisy_draft), k)
    got = decoder.generate(prefix, ids, Sampler(GREEDY), MAX_CODES, stats=stats)
    assert got.tolist() == expected.tolist()
    assert len(expected) >= 8 and stats.drafted > 0
    if not noisy_draft:
        assert stats.verify_passes < len(expected), "the int8 draft saved fp32 passes"


def test_speculative_needs_the_language(pipeline: Pipeline25) -> None:
    prefix, ids = sentence(pipeline.gpt, *CASES[0])
    decoder = SpeculativeDecoder(pipeline.gpt, runtime(pipeline, GPT_INT8_GRAPH), 2)
    with pytest.raises(ValueError, match="language"):
        decoder.generate(prefix, list(ids), Sampler(GREEDY), MAX_CODES)


@pytest.mark.parametrize("sampling", [GREEDY, SamplingOptions()], ids=["greedy", "sampling"])
def test_batched_codes_equal_alone_25(pipeline: Pipeline25, sampling: SamplingOptions) -> None:
    gpt = pipeline.gpt
    sentences = [sentence(gpt, *case) for case in CASES]
    alone = [plain(gpt, prefix, ids, Sampler(sampling, np.random.default_rng(s))) for s, (prefix, ids) in enumerate(sentences)]
    together = generate_batch(
        gpt,
        [prefix for prefix, _ in sentences],
        [ids for _, ids in sentences],
        [Sampler(sampling, np.random.default_rng(s)) for s in range(len(sentences))],
        MAX_CODES,
    )
    assert [codes.tolist() for codes in together] == [codes.tolist() for codes in alone]
    assert len({len(codes) for codes in alone}) > 1, "sentences leave the batch at different steps"


# -- the engine ------------------------------------------------------------------------------------

ENGINE_GREEDY = IndexTTSOptions(do_sample=False, seed=21, diffusion_steps=2, max_mel_tokens=40, speed=1.25)
TEXTS = ["hello world! the weather today", "今天天气很好", "the lights in the kitchen, turn on the lights"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepared voices, shared by every engine of this module (one preparation of the clip)."""
    return tmp_path_factory.mktemp("prepared25")


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("voices25")
    write_clip(folder / "mia.wav", voiced_clip(1.6, 24000, seed=7), 24000)
    # Latin-script text is read as the voice's language: Spanish here, so a batch that lost the
    # voice's languages would read the English texts as English
    (folder / "mia.yaml").write_text("languages: [es]\n")
    return folder


def render_all(model_dir: Path, voices_dir: Path, store: Path, options: IndexTTSOptions, batched: bool) -> list:
    engine = IndexTTSEngine.load(model_dir, voices_dir, store, options)
    try:
        voice = engine.voices()[0]
        if batched:
            return engine.synthesize_batch(TEXTS, voice)
        return [b"".join(engine.synthesize(text, voice)) for text in TEXTS]
    finally:
        engine.close()


@pytest.mark.parametrize("options", [ENGINE_GREEDY, replace(ENGINE_GREEDY, do_sample=True, seed=5)], ids=["greedy", "sampling"])
def test_engine_batch_equals_one_by_one_25(tiny25_model_dir: Path, voices_dir: Path, store: Path, options) -> None:
    one_by_one = render_all(tiny25_model_dir, voices_dir, store, options, batched=False)
    assert all(isinstance(pcm, bytes) and pcm for pcm in one_by_one)
    assert render_all(tiny25_model_dir, voices_dir, store, options, batched=True) == one_by_one


def test_engine_speculative_speaks_the_fp32_audio_25(tiny25_model_dir: Path, voices_dir: Path, store: Path) -> None:
    fp32 = render_all(tiny25_model_dir, voices_dir, store, ENGINE_GREEDY, batched=False)
    fast = render_all(tiny25_model_dir, voices_dir, store, replace(ENGINE_GREEDY, speculative=3), batched=False)
    assert fast == fp32


def test_int8_stays_close_to_fp32_25(tiny25_model_dir: Path, voices_dir: Path, store: Path) -> None:
    """--indextts-int8 on a 2.5 folder (not exact, opt-in): the int8 GPT core and diffusion
    step are really used, and stay close to fp32: the first code's logits, and the mel from
    the same codes and noise. The tiny DiT amplifies int8 rounding (its adaptive norms are
    scaled up, tiny_acoustic.py); the published-size mel cosine is in benchmarks/RESULTS.md."""
    logits, mels = {}, {}
    codes = np.arange(100, 130)  # the same codes on both sides: the diffusion alone is compared
    for int8 in (False, True):
        engine = IndexTTSEngine.load(tiny25_model_dir, voices_dir, store, replace(ENGINE_GREEDY, int8=int8))
        try:
            voice = engine.voices()[0]
            ids = engine.text_segments(TEXTS[0], ["en"])[0]
            logits[int8] = engine.pipeline.gpt.start(engine.prefix(voice), ids)[0][0]
            mels[int8] = engine.render(ids, voice, rng=np.random.default_rng(0), raw_codes=codes).mel
        finally:
            engine.close()
    for name, values in (("logits", logits), ("mel", mels)):
        assert not np.array_equal(values[True], values[False]), f"the int8 graph computed the {name}"
        assert cosine(values[True], values[False]) >= 0.98, name
