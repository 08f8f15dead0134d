"""One segment of IndexTTS-2.5: GPT codes (25 Hz, with the language id) → codec decoder →
length regulator at the speech rate → s2mel → BigVGAN.

`Pipeline25` is `Pipeline` with 2.5's stages (see ``gpt25``, ``codec`` and
``infer_v2_5.IndexTTS2.infer_generator``): there are no GPT latents (s2mel reads the decoded
codes alone) and no ``s2mel_front`` graph. Text comes as `LanguageIds`: the token ids (the
language token included, as the 2.5 tokenizer writes it) and the language whose embedding the
GPT adds (the 2.5 text frontend makes both). Plain, speculative and batched decoding are 2.0's,
on `GPT25Runtime`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .codec import SemanticDecoder, duration_factor
from .format import (
    BIGVGAN_GRAPH,
    CODEC_DECODE_GRAPH,
    GPT_GRAPH,
    GPT_INT8_GRAPH,
    INDEXTTS_25,
    PROMPT_REGULATOR_GRAPH,
    S2MEL_ESTIMATOR_GRAPH,
    S2MEL_ESTIMATOR_INT8_GRAPH,
)
from .gpt import GPTConfig, trim_codes
from .gpt25 import GPT25Runtime, LanguageIds
from .model import EXPORT_HINT, IndexTTSModel, ModelError
from .options import IndexTTSOptions
from .pipeline import Pipeline, SegmentResult, require_graphs
from .s2mel import S2Mel
from .text.frontend25 import TextFrontend25
from .vocoder import Vocoder
from .voice import VoiceConditioning


def is_indextts25(model: IndexTTSModel) -> bool:
    return model.manifest.model == INDEXTTS_25


_HAN = re.compile(r"[\u4e00-\u9fff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_ARABIC = re.compile(r"[\u0600-\u06ff]")
LATIN_LANGUAGES = ("en", "es")


class Frontend25:
    """`TextFrontend25` with a language per text: the forced one (options.language), else the
    text's script (kana: ja, Han: zh, Arabic: ar), else the voice's first Latin-script language
    (its yaml `languages`: en or es), else en."""

    def __init__(self, frontend: TextFrontend25, capacity: int, language: str | None = None) -> None:
        self.frontend = frontend
        self.capacity = capacity
        self.language = language

    def language_for(self, text: str, languages: Sequence[str] = ()) -> str:
        if self.language:
            return self.language
        if _KANA.search(text):
            return "ja"
        if _HAN.search(text):
            return "zh"
        if _ARABIC.search(text):
            return "ar"
        return next((lang for lang in languages if lang in LATIN_LANGUAGES), "en")

    def segment_ids(self, text: str, max_tokens: int, languages: Sequence[str] = ()) -> list[LanguageIds]:
        language = self.language_for(text, languages)
        return [LanguageIds(ids, language) for ids in self.frontend.segment_ids(text, language, self.capacity, max_tokens)]


def frontend25_for(model: IndexTTSModel, options: IndexTTSOptions) -> Frontend25:
    """The folder's 2.5 text frontend (its .tiktoken vocabulary), positions as the GPT has."""
    try:
        frontend = TextFrontend25.load(model.file(model.config["tokenizer"]))
    except (OSError, ValueError) as err:
        raise ModelError(f"{model.path}: unreadable IndexTTS-2.5 tokenizer ({err}); {EXPORT_HINT}") from err
    return Frontend25(frontend, int(model.config["gpt"]["max_text_tokens"]) + 2, options.language)


def serving_graphs25(options: IndexTTSOptions) -> tuple[str, ...]:
    """`pipeline.serving_graphs` for 2.5: the codec decoder and prompt regulator in place of
    ``s2mel_front`` (and the int8 core as the speculative draft)."""
    if options.int8:
        return (GPT_INT8_GRAPH, CODEC_DECODE_GRAPH, PROMPT_REGULATOR_GRAPH, S2MEL_ESTIMATOR_INT8_GRAPH, BIGVGAN_GRAPH)
    draft = (GPT_INT8_GRAPH,) if options.speculative else ()
    return (GPT_GRAPH, CODEC_DECODE_GRAPH, PROMPT_REGULATOR_GRAPH, S2MEL_ESTIMATOR_GRAPH, BIGVGAN_GRAPH, *draft)


class Pipeline25(Pipeline):
    """The serving sessions of an IndexTTS-2.5 model folder, run one segment at a time."""

    def __init__(self, model: IndexTTSModel, options: IndexTTSOptions) -> None:
        self.model = model
        self.options = options
        cfg = model.config
        graphs = serving_graphs25(options)
        require_graphs(model, graphs, options)
        self._open_gpt(graphs[0])
        self.decoder = SemanticDecoder(model.session, model.speech.mel_frames_per_code)
        self.s2mel = S2Mel(model.session, graphs[3], model.speech.mel_frames_per_code)
        self.vocoder = Vocoder(model.session, model.speech)
        for graph in graphs:
            model.session(graph)
        self.emo_num = [int(n) for n in cfg["emo_num"]]
        self.emo_matrix = model.array(cfg["emo_matrix"])

    def _gpt_runtime(self, session: Any, arrays: dict[str, np.ndarray], config: GPTConfig) -> GPT25Runtime:
        return GPT25Runtime(session, arrays, config, self.model.config["gpt"]["languages"])

    def render(
        self,
        text_ids: Sequence[int],
        conditioning: VoiceConditioning,
        emotion_rows: Sequence[int] = (),
        *,
        rng: np.random.Generator | None = None,
        noise: np.ndarray | None = None,
        raw_codes: np.ndarray | None = None,
        speed: float = 1.0,
        pause: Callable[[], None] | None = None,
    ) -> SegmentResult:
        """One segment → codes, decoded codec features (in `latents`), mel and waveform;
        `pause` as in `Pipeline.render`."""
        opts = self.options
        rng = rng if rng is not None else np.random.default_rng(opts.seed)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        prefix = self.prefix(conditioning, emotion_rows)
        raw = raw_codes if raw_codes is not None else self.codes(prefix, text_ids, rng)
        codes = trim_codes(raw, self.gpt.config.stop_mel_token)
        timings["gpt_generate"] = time.perf_counter() - start
        ids = [int(i) for i in text_ids]
        if codes.size == 0:
            empty = np.zeros((0,), dtype=np.float32)
            return SegmentResult(ids, codes, np.zeros((1, 0, 1024), np.float32), empty, empty, None, timings)
        start = time.perf_counter()
        features = self.decoder.decode(codes[None])
        cond = self.decoder.regulate(features, duration_factor(speed))
        timings["codec"] = time.perf_counter() - start
        start = time.perf_counter()
        mu = np.concatenate([conditioning.prompt_condition, cond], axis=1)
        if noise is None:
            noise = rng.standard_normal((1, conditioning.ref_mel.shape[1], mu.shape[1]), dtype=np.float32)
        mel = self.s2mel.sample(
            mu, conditioning.ref_mel, conditioning.style, steps=opts.diffusion_steps, cfg_rate=opts.cfg_rate, noise=noise, pause=pause
        )
        timings["s2mel"] = time.perf_counter() - start
        start = time.perf_counter()
        wav = self.vocoder(mel)
        timings["bigvgan"] = time.perf_counter() - start
        return SegmentResult(ids, codes, features, mel, wav, noise, timings)
