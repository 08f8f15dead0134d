"""One segment of text ids → audio: GPT codes → GPT latents → s2mel → BigVGAN.

`Pipeline` holds the serving sessions of a model folder (the graphs `serving_graphs` names for
the options) and runs them in the order ``IndexTTS2.infer_generator`` does per segment. The
engine speaks through it; the benchmarks time its stages (`prefix`, `codes`, `gpt.latents`,
`mel`, `vocoder`) instead of wiring the runtimes by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .format import (
    BIGVGAN_GRAPH,
    GPT_GRAPH,
    GPT_INT8_GRAPH,
    S2MEL_ESTIMATOR_GRAPH,
    S2MEL_ESTIMATOR_INT8_GRAPH,
    S2MEL_FRONT_GRAPH,
)
from .gpt import REEXPORT_HINT, GPTConfig, GPTRuntime, apply_emotion_vector, merge_emovec, scale_emotion_weights, trim_codes
from .model import EXPORT_HINT, IndexTTSModel, ModelError
from .options import IndexTTSOptions
from .s2mel import S2Mel
from .sampling import Sampler
from .speculative import SpeculativeDecoder
from .text import TextFrontend
from .vocoder import Vocoder
from .voice import VoiceConditioning

_LOGGER = logging.getLogger(__name__)


def serving_graphs(options: IndexTTSOptions) -> tuple[str, ...]:
    """The graphs a serving process holds: the GPT core, s2mel and BigVGAN (and the int8 GPT
    core as the draft of speculative decoding)."""
    if options.int8:
        return (GPT_INT8_GRAPH, S2MEL_FRONT_GRAPH, S2MEL_ESTIMATOR_INT8_GRAPH, BIGVGAN_GRAPH)
    draft = (GPT_INT8_GRAPH,) if options.speculative else ()
    return (GPT_GRAPH, S2MEL_FRONT_GRAPH, S2MEL_ESTIMATOR_GRAPH, BIGVGAN_GRAPH, *draft)


def require_graphs(model: IndexTTSModel, graphs: Sequence[str], options: IndexTTSOptions) -> None:
    """ModelError naming the first of `graphs` the folder lacks, and what to do about it."""
    for graph in graphs:
        if not model.has_graph(graph):
            fast = options.int8 or options.speculative
            hint = "export the model again with --int8, or leave int8 and speculative off" if fast else EXPORT_HINT
            raise ModelError(f"{model.path}: has no {graph}.onnx; {hint}")


@dataclass
class SegmentResult:
    """One rendered segment with its intermediates (for tests and benchmarks)."""

    text_ids: list[int]
    codes: np.ndarray
    latents: np.ndarray
    mel: np.ndarray
    wav: np.ndarray
    noise: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)


def to_pcm16(wav: np.ndarray) -> bytes:
    """infer_v2: ``(wav * 32767).clamp(-32767, 32767).to(int16)`` of the clamped float audio."""
    scaled = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0) * np.float32(32767)
    return np.clip(scaled, -32767, 32767).astype("<i2").tobytes()


class Pipeline:
    """The serving sessions and the text frontend of an IndexTTS-2 model folder, run for one
    segment at a time. `Pipeline25` is the same for IndexTTS-2.5; `open_pipeline` picks."""

    def __init__(self, model: IndexTTSModel, options: IndexTTSOptions, frontend: Any = None) -> None:
        """Opens every graph `serving_graphs` names (ModelError when one is missing) and the
        folder's text frontend, unless `frontend` (text → token id segments) is given."""
        self.model = model
        self.options = options
        self._check_options()
        graphs = self.serving_graphs()
        require_graphs(model, graphs, options)
        self._open_gpt(graphs[0])
        self._open_acoustic(graphs)
        for graph in graphs:
            model.session(graph)
        self.emo_num = [int(n) for n in model.config["emo_num"]]
        self.emo_matrix = model.array(model.config["emo_matrix"])
        self.frontend = frontend if frontend is not None else self._load_frontend()

    def _check_options(self) -> None:
        if self.options.speed != 1.0:
            raise ModelError(f"{self.model.path}: holds IndexTTS-2, which has no speech rate; --indextts-speed needs an IndexTTS-2.5 model")

    def serving_graphs(self) -> tuple[str, ...]:
        """The graphs this pipeline holds with its options, the GPT core first."""
        return serving_graphs(self.options)

    def _open_acoustic(self, graphs: Sequence[str]) -> None:
        _core, _front, estimator, _vocoder = graphs[:4]
        self.s2mel = S2Mel(self.model.session, estimator, self.model.speech.mel_frames_per_code)
        self.vocoder = Vocoder(self.model.session, self.model.speech)

    def _load_frontend(self) -> TextFrontend:
        try:
            return TextFrontend.load(self.model.file(self.model.config["bpe_model"]), language=self.options.language)
        except (OSError, RuntimeError) as err:
            raise ModelError(f"{self.model.path / 'bpe.model'}: unreadable tokenizer ({err})") from err

    speaks_at_speed = False
    """IndexTTS-2 has no speech rate: the options refuse one, the engine warns of a voice's."""

    def text_segments(self, text: str, languages: Sequence[str] = ()) -> list[list[int]]:
        """Token id segments of `text` (NoSpeakableTextError when there is nothing to say).
        IndexTTS-2 reads every text the same way: a voice's `languages` do not matter."""
        return self.frontend.segment_ids(text, self.options.max_text_tokens_per_segment)

    def _gpt_runtime(self, session: Any, arrays: dict[str, np.ndarray], config: GPTConfig) -> GPTRuntime:
        """The GPT runtime of this model version over `session` (the fp32 or the int8 core)."""
        return GPTRuntime(session, arrays, config)

    def _open_gpt(self, core: str) -> None:
        """`self.gpt` on the `core` graph, and `self.speculative` (the int8 core drafting) when
        the options ask for it."""
        model = self.model
        arrays = {name: model.array(file) for name, file in model.config["gpt_arrays"].items()}
        config = GPTConfig.from_mapping(model.config["gpt"])
        self.gpt = self._gpt_runtime(model.session(core), arrays, config)
        self.speculative: SpeculativeDecoder | None = None
        if self.options.speculative:
            if not self.gpt.maskable:
                raise ModelError(f"{model.path}: {REEXPORT_HINT}")
            draft = self._gpt_runtime(model.session(GPT_INT8_GRAPH), arrays, config)
            self.speculative = SpeculativeDecoder(self.gpt, draft, self.options.speculative)

    @property
    def sample_rate(self) -> int:
        return self.vocoder.sample_rate

    def emovec(self, conditioning: VoiceConditioning, emotion_rows: Sequence[int] = ()) -> np.ndarray:
        """The emotion vector of a voice with the options: `merge_emovec` of its speaker and
        emotion vectors, mixed with the emotion matrix rows `emotion_rows` (the voice's style's
        nearest, `gpt.emotion_indices`) when the options give an explicit emotion."""
        emovec = merge_emovec(conditioning.emovec_speaker, conditioning.emovec_emotion, 1.0)
        if self.options.emotion is not None:
            weights = scale_emotion_weights(self.options.emotion, self.options.emotion_strength)
            emovec = apply_emotion_vector(emovec, weights, self.emo_matrix, self.emo_num, list(emotion_rows))
        return emovec

    def prefix(self, conditioning: VoiceConditioning, emotion_rows: Sequence[int] = ()) -> np.ndarray:
        """The GPT conditioning prefix of a voice with the options."""
        return self.gpt.conditioning_prefix(conditioning.speaker_latents, self.emovec(conditioning, emotion_rows))

    def codes(self, prefix: np.ndarray, text_ids: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        """The GPT's raw codes for one segment (up to and with the stop token), drawn from `rng`."""
        opts = self.options
        decoder = self.speculative if self.speculative is not None else self.gpt
        return decoder.generate(prefix, text_ids, Sampler(opts.sampling(), rng), opts.max_mel_tokens)

    def mel(
        self,
        latents: np.ndarray,
        codes: np.ndarray,
        conditioning: VoiceConditioning,
        *,
        rng: np.random.Generator | None = None,
        noise: np.ndarray | None = None,
        pause: Callable[[], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """s2mel of one segment after the voice's prompt: (new mel, the noise it started from).
        The noise is `noise`, else ``rng.standard_normal((1, 80, prompt + new frames))``."""
        cond = self.s2mel.condition(latents, codes[None])
        mu = np.concatenate([conditioning.prompt_condition, cond], axis=1)
        if noise is None:
            rng = rng if rng is not None else np.random.default_rng(self.options.seed)
            mel_bins = conditioning.ref_mel.shape[1]
            noise = rng.standard_normal((1, mel_bins, mu.shape[1]), dtype=np.float32)
        mel = self.s2mel.sample(
            mu,
            conditioning.ref_mel,
            conditioning.style,
            steps=self.options.diffusion_steps,
            cfg_rate=self.options.cfg_rate,
            noise=noise,
            pause=pause,
        )
        return mel, noise

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
        """One segment of text ids → codes, latents, mel and waveform. `speed` (a voice's own)
        is not used: IndexTTS-2 has no speech rate.

        Diffusion noise is `noise` when given, else drawn from `rng` after the GPT's draws
        (``rng.standard_normal((1, 80, frames), dtype=float32)``), so a test can reproduce it.
        `raw_codes`: the GPT's codes when they were decoded already (in a batch); `pause`:
        called before each diffusion step (see `S2Mel.sample`).
        """
        opts = self.options
        rng = rng if rng is not None else np.random.default_rng(opts.seed)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        prefix = self.prefix(conditioning, emotion_rows)
        raw = raw_codes if raw_codes is not None else self.codes(prefix, text_ids, rng)
        stop = self.gpt.config.stop_mel_token
        if raw.size and raw[-1] != stop:
            _LOGGER.warning(
                "Generation stopped at max_mel_tokens (%d) for %d text tokens; consider a smaller "
                "max_text_tokens_per_segment", opts.max_mel_tokens, len(text_ids)
            )
        codes = trim_codes(raw, stop)
        timings["gpt_generate"] = time.perf_counter() - start
        ids = list(int(i) for i in text_ids)
        if codes.size == 0:
            empty = np.zeros((0,), dtype=np.float32)
            return SegmentResult(ids, codes, np.zeros((1, 0, self.gpt.config.model_dim), np.float32), empty, empty, None, timings)
        start = time.perf_counter()
        latents = self.gpt.latents(prefix, text_ids, codes)
        timings["gpt_forward"] = time.perf_counter() - start
        start = time.perf_counter()
        mel, noise = self.mel(latents, codes, conditioning, rng=rng, noise=noise, pause=pause)
        timings["s2mel"] = time.perf_counter() - start
        start = time.perf_counter()
        wav = self.vocoder(mel)
        timings["bigvgan"] = time.perf_counter() - start
        return SegmentResult(ids, codes, latents, mel, wav, noise, timings)
