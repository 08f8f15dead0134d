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
    PROMPT_REGULATOR_GRAPH,
    S2MEL_ESTIMATOR_GRAPH,
    S2MEL_ESTIMATOR_INT8_GRAPH,
)
from .gpt import GPTConfig, trim_codes
from .gpt25 import GPT25Runtime
from .model import EXPORT_HINT, ModelError
from .options import IndexTTSOptions
from .pipeline import Pipeline, SegmentResult
from .s2mel import S2Mel
from .text.frontend25 import Frontend25, LanguageIds, TextFrontend25
from .vocoder import Vocoder
from .voice import VoiceConditioning


def serving_graphs25(options: IndexTTSOptions) -> tuple[str, ...]:
    """`pipeline.serving_graphs` for 2.5: the codec decoder and prompt regulator in place of
    ``s2mel_front`` (and the int8 core as the speculative draft)."""
    if options.int8:
        return (GPT_INT8_GRAPH, CODEC_DECODE_GRAPH, PROMPT_REGULATOR_GRAPH, S2MEL_ESTIMATOR_INT8_GRAPH, BIGVGAN_GRAPH)
    draft = (GPT_INT8_GRAPH,) if options.speculative else ()
    return (GPT_GRAPH, CODEC_DECODE_GRAPH, PROMPT_REGULATOR_GRAPH, S2MEL_ESTIMATOR_GRAPH, BIGVGAN_GRAPH, *draft)


class Pipeline25(Pipeline):
    """The serving sessions and the text frontend of an IndexTTS-2.5 model folder, run one
    segment at a time."""

    def _check_options(self) -> None:
        pass  # every option of IndexTTSOptions applies to 2.5, the speech rate included

    def serving_graphs(self) -> tuple[str, ...]:
        return serving_graphs25(self.options)

    def _open_acoustic(self, graphs: Sequence[str]) -> None:
        self.decoder = SemanticDecoder(self.model.session, self.model.speech.mel_frames_per_code)
        self.s2mel = S2Mel(self.model.session, graphs[3], self.model.speech.mel_frames_per_code)
        self.vocoder = Vocoder(self.model.session, self.model.speech)

    def _load_frontend(self) -> Frontend25:
        """The folder's 2.5 text frontend (its .tiktoken vocabulary), positions as the GPT has."""
        model = self.model
        try:
            frontend = TextFrontend25.load(model.file(model.config["tokenizer"]))
        except (OSError, ValueError) as err:
            raise ModelError(f"{model.path}: unreadable IndexTTS-2.5 tokenizer ({err}); {EXPORT_HINT}") from err
        return Frontend25(frontend, int(model.config["gpt"]["max_text_tokens"]) + 2, self.options.language)

    speaks_at_speed = True

    def text_segments(self, text: str, languages: Sequence[str] = ()) -> list[LanguageIds]:
        """`LanguageIds` segments, in the language `Frontend25.language_for` picks with the
        voice's `languages`."""
        return self.frontend.segment_ids(text, self.options.max_text_tokens_per_segment, languages)

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
        speed: float | None = None,
        pause: Callable[[], None] | None = None,
    ) -> SegmentResult:
        """One segment → codes, decoded codec features (in `latents`), mel and waveform, at
        `speed` (a voice's own), else the options' speed; `pause` as in `Pipeline.render`."""
        opts = self.options
        speed = speed or opts.speed
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
