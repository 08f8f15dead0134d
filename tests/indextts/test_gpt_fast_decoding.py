"""Speculative and batched decoding of the GPT stage on the tiny exported model.

Both must be exact: greedy codes equal to plain fp32 decoding; speculative sampling draws
from exactly the fp32 distribution (checked with a chi-square test over many seeds, which a
planted wrong rejection step fails).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wyoming_indextts.engines.indextts import speculative  # noqa: E402
from wyoming_indextts.engines.indextts.batched import generate_batch  # noqa: E402
from wyoming_indextts.engines.indextts.format import GPT_GRAPH as CORE_GRAPH  # noqa: E402
from wyoming_indextts.engines.indextts.gpt import GPTConfig, GPTRuntime  # noqa: E402
from wyoming_indextts.engines.indextts.model import IndexTTSModel  # noqa: E402
from wyoming_indextts.engines.indextts.sampling import Sampler, SamplingOptions  # noqa: E402
from wyoming_indextts.engines.indextts.speculative import SpeculativeDecoder, SpeculativeStats  # noqa: E402

pytestmark = pytest.mark.slow

GREEDY = SamplingOptions(do_sample=False)


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> IndexTTSModel:
    return IndexTTSModel.open(tiny_model_dir)


def _arrays(model: IndexTTSModel) -> dict[str, np.ndarray]:
    return {name: model.array(file) for name, file in model.config["gpt_arrays"].items()}


@pytest.fixture(scope="module")
def fp32(model: IndexTTSModel) -> GPTRuntime:
    return GPTRuntime(model.session(CORE_GRAPH), _arrays(model), GPTConfig.from_mapping(model.config["gpt"]))


@pytest.fixture(scope="module")
def int8(model: IndexTTSModel) -> GPTRuntime:
    return GPTRuntime(model.session("gpt_int8"), _arrays(model), GPTConfig.from_mapping(model.config["gpt"]))


@pytest.fixture(scope="module")
def poor_draft(model: IndexTTSModel) -> GPTRuntime:
    """The int8 core with noisy code embeddings: a draft that is often wrong, so that the
    rejection path runs (the exactness must not depend on the draft being good)."""
    arrays = _arrays(model)
    noise = np.random.default_rng(7).standard_normal(arrays["mel_embedding"].shape).astype(np.float32)
    arrays["mel_embedding"] = arrays["mel_embedding"] + noise * 3 * arrays["mel_embedding"].std()
    return GPTRuntime(model.session("gpt_int8"), arrays, GPTConfig.from_mapping(model.config["gpt"]))


def prefix_for(runtime: GPTRuntime, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dim = runtime.config.model_dim
    latents = rng.standard_normal((1, 32, dim)).astype(np.float32)
    emovec = (rng.standard_normal((1, dim)) * 0.1).astype(np.float32)
    return runtime.conditioning_prefix(latents, emovec)


def text_for(seed: int, length: int) -> list[int]:
    return np.random.default_rng(seed).integers(2, 250, length).tolist()


# -- speculative, greedy ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 6])
@pytest.mark.parametrize("case", [(1, 23, 120, 0), (2, 9, 14, 0), (3, 17, 40, 30)])
def test_speculative_greedy_codes_equal_fp32(fp32, int8, poor_draft, k: int, case) -> None:
    seed, text_len, max_tokens, min_tokens = case
    prefix, text = prefix_for(fp32, seed), text_for(seed, text_len)
    expected = fp32.generate(prefix, text, Sampler(GREEDY), max_tokens, min_tokens)
    assert len(expected) > 3
    for draft in (int8, poor_draft):
        stats = SpeculativeStats()
        codes = SpeculativeDecoder(fp32, draft, k).generate(prefix, text, Sampler(GREEDY), max_tokens, min_tokens, stats)
        np.testing.assert_array_equal(codes, expected)
        assert stats.drafted > 0 and stats.verify_passes < len(expected) + 1
    assert stats.accepted < stats.drafted  # the poor draft was rejected somewhere


def test_speculative_stops_where_fp32_stops(fp32, int8) -> None:
    """Both the stop-token path and the length limit are hit as plain decoding hits them."""
    # On the tiny model greedy decoding of this random prompt ends with the stop code (95 codes).
    prefix, text = prefix_for(fp32, 9), text_for(9, 3)
    stopped = fp32.generate(prefix, text, Sampler(GREEDY), 400)
    assert stopped[-1] == fp32.config.stop_mel_token
    np.testing.assert_array_equal(SpeculativeDecoder(fp32, int8, 4).generate(prefix, text, Sampler(GREEDY), 400), stopped)
    for limit in (1, 2, 5):
        cut = SpeculativeDecoder(fp32, int8, 4).generate(prefix, text, Sampler(GREEDY), limit)
        np.testing.assert_array_equal(cut, stopped[:limit])


def test_speculative_needs_a_positive_k(fp32, int8) -> None:
    with pytest.raises(ValueError, match="k >= 1"):
        SpeculativeDecoder(fp32, int8, 0)


# -- speculative, sampling: the distribution --------------------------------------------------------

SAMPLING = SamplingOptions(do_sample=True, top_k=12, top_p=0.9, temperature=1.0, repetition_penalty=10.0)
SAMPLES = 2000
CHI2_P = 1e-4  # a correct decoder fails 1 in 10000 seeds sets; the seeds are fixed anyway


class _Memoised(GPTRuntime):
    """A runtime that runs each distinct pass once: the statistical test decodes the same
    prompt thousands of times, and a pass is a deterministic function of the embeddings fed
    and of the KV cache they extend (told apart here by its newest positions: every run
    shares the prompt, and the codes after it differ)."""

    def __init__(self, runtime: GPTRuntime) -> None:
        self.__dict__.update(runtime.__dict__)
        self._inner = runtime
        self._passes: dict[bytes, tuple] = {}

    def run_masked(self, embeds, past=None, mask=None, logit_positions=()):
        digest = hashlib.blake2b(np.ascontiguousarray(embeds).tobytes(), digest_size=16)
        for name in sorted(past or {}):
            digest.update(repr(past[name].shape).encode())
            digest.update(np.ascontiguousarray(past[name][:, :, -4:]).tobytes())
        digest.update(repr((None if mask is None else mask.tolist(), list(logit_positions))).encode())
        key = digest.digest()
        if key not in self._passes:
            self._passes[key] = self._inner.run_masked(embeds, past, mask, logit_positions)
        hidden, logits, present, position_logits = self._passes[key]
        return hidden, logits, dict(present), position_logits


class _Sharpened(GPTRuntime):
    """A draft that is too sure of itself (its logits scaled up): it overlaps the fp32
    distribution partly, so drafts are often kept and often rejected, and a wrong rejection
    step shifts the result far more than with a draft that is almost always rejected."""

    def __init__(self, runtime: GPTRuntime, factor: float) -> None:
        self.__dict__.update(runtime.__dict__)
        self._inner = runtime
        self._factor = np.float32(factor)

    def run_masked(self, embeds, past=None, mask=None, logit_positions=()):
        hidden, logits, present, position_logits = self._inner.run_masked(embeds, past, mask, logit_positions)
        scaled = None if position_logits is None else position_logits * self._factor
        return hidden, logits * self._factor, present, scaled


def exact_second_code_distribution(fp32: GPTRuntime, prefix, text) -> np.ndarray:
    """P(code 2 = t) under plain fp32 sampling: sum over code 1 of p(code 1) p(t | code 1)."""
    sampler = Sampler(SAMPLING)
    logits, past, seen = fp32.start(prefix, text)
    first = sampler.distribution(fp32.forbid_stop(logits[0], 0, 3), np.asarray(seen))
    total = np.zeros_like(first)
    for code in np.flatnonzero(first > 0):
        _, after, _ = fp32.run_core(fp32.code_embeddings([int(code)], 0), past)
        row = fp32.forbid_stop(after[0], 1, 3)
        total += first[code] * sampler.distribution(row, np.asarray(seen + [int(code)]))
    return total


def chi_square_p_value(counts: np.ndarray, probs: np.ndarray) -> float:
    """Pearson's chi-square, tokens with an expected count below 5 pooled into one cell."""
    from scipy.stats import chi2

    expected = probs * counts.sum()
    big = expected >= 5
    observed_cells = np.append(counts[big], counts[~big].sum())
    expected_cells = np.append(expected[big], expected[~big].sum())
    if expected_cells[-1] < 5:  # fold a small pooled cell into the smallest big one
        smallest = int(np.argmin(expected_cells[:-1]))
        observed_cells[smallest] += observed_cells[-1]
        expected_cells[smallest] += expected_cells[-1]
        observed_cells, expected_cells = observed_cells[:-1], expected_cells[:-1]
    statistic = float(((observed_cells - expected_cells) ** 2 / expected_cells).sum())
    return float(chi2.sf(statistic, len(expected_cells) - 1))


def speculative_second_codes(fp32: GPTRuntime, draft: GPTRuntime, prefix, text) -> tuple[np.ndarray, SpeculativeStats]:
    """The second code of SAMPLES seeded speculative runs (it is the first drafted one)."""
    decoder = SpeculativeDecoder(fp32, draft, 2)
    stats = SpeculativeStats()
    counts = np.zeros(fp32.config.number_mel_codes, dtype=np.int64)
    for seed in range(SAMPLES):
        codes = decoder.generate(prefix, text, Sampler(SAMPLING, np.random.default_rng(seed)), 3, 3, stats)
        counts[codes[1]] += 1
    return counts, stats


@pytest.fixture(scope="module")
def memoised(fp32: GPTRuntime, int8: GPTRuntime) -> tuple[GPTRuntime, GPTRuntime]:
    """fp32 and a sharpened int8 draft, each pass run once for both statistical tests."""
    return _Memoised(fp32), _Memoised(_Sharpened(int8, 2.5))


@pytest.fixture(scope="module")
def distribution_case(memoised):
    fp32 = memoised[0]
    prefix, text = prefix_for(fp32, 11), text_for(11, 7)
    return prefix, text, exact_second_code_distribution(fp32, prefix, text)


def test_speculative_sampling_follows_the_fp32_distribution(memoised, distribution_case) -> None:
    fp32, poor_draft = memoised
    prefix, text, exact = distribution_case
    assert (exact > 0.02).sum() >= 5  # a spread distribution, not one likely code
    counts, stats = speculative_second_codes(fp32, poor_draft, prefix, text)
    assert 0.2 < stats.acceptance_rate < 0.9  # both the acceptance and the rejection path ran often
    assert chi_square_p_value(counts, exact) > CHI2_P
    assert 0.5 * np.abs(counts / counts.sum() - exact).sum() < 0.1  # total variation (0.14 with the planted bug)


def test_statistical_test_catches_a_wrong_rejection_step(memoised, distribution_case, monkeypatch) -> None:
    """The same test against a planted bug (a rejected draft replaced by a draw from p instead
    of the residual max(0, p - q)): it must fail, or it guards nothing."""
    fp32, poor_draft = memoised
    prefix, text, exact = distribution_case
    monkeypatch.setattr(speculative, "residual_distribution", lambda p, q: p)
    counts, _ = speculative_second_codes(fp32, poor_draft, prefix, text)
    assert chi_square_p_value(counts, exact) < CHI2_P


# -- batched ------------------------------------------------------------------------------------------


def test_batched_greedy_codes_equal_unbatched(fp32) -> None:
    # Two of these stop by themselves on the tiny model (after 95 and 131 codes), two run on.
    cases = [(9, 3), (10, 3), (1, 23), (2, 9)]
    prefixes = [prefix_for(fp32, seed) for seed, _ in cases]
    texts = [text_for(seed, length) for seed, length in cases]
    for max_tokens, min_tokens in ((120, 0), (150, 100)):
        alone = [fp32.generate(p, t, Sampler(GREEDY), max_tokens, min_tokens) for p, t in zip(prefixes, texts)]
        assert len({len(codes) for codes in alone}) > 1  # sentences leave the batch at different steps
        together = generate_batch(fp32, prefixes, texts, [Sampler(GREEDY) for _ in cases], max_tokens, min_tokens)
        assert len(together) == len(alone)
        for mine, theirs in zip(together, alone):
            np.testing.assert_array_equal(mine, theirs)


def test_batched_seeded_sampling_equals_unbatched(fp32) -> None:
    """Each sentence draws from its own generator in the order it would alone."""
    options = SamplingOptions(seed=3)
    prefixes = [prefix_for(fp32, seed) for seed in (1, 2, 3)]
    texts = [text_for(seed, 5 + 6 * seed) for seed in (1, 2, 3)]
    alone = [fp32.generate(p, t, Sampler(options), 30) for p, t in zip(prefixes, texts)]
    together = generate_batch(fp32, prefixes, texts, [Sampler(options) for _ in texts], 30)
    for mine, theirs in zip(together, alone):
        np.testing.assert_array_equal(mine, theirs)


def test_batched_input_checks(fp32) -> None:
    assert generate_batch(fp32, [], [], []) == []
    with pytest.raises(ValueError, match="one prefix, one text and one sampler"):
        generate_batch(fp32, [prefix_for(fp32, 1)], [], [Sampler(GREEDY)])
