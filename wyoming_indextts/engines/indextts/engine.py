"""IndexTTS-2 as a wyoming-indextts engine: ONNX Runtime + numpy, no torch.

Per sentence, as ``IndexTTS2.infer_generator`` does per segment:

1. text → normalised BPE ids, cut into segments of at most ``max_text_tokens_per_segment``;
2. emotion vector: ``merge_emovec`` of the voice's speaker and emotion vectors (alpha 1, the
   clip is its own emotion reference), or, with an explicit 8-emotion vector, its mix with
   the emotion matrix rows chosen by the voice's style;
3. GPT: prefill + decode loop with a KV cache → mel codes (cut at the stop token);
4. GPT forward → latents; s2mel (front graph, Euler + CFG loop over the DiT step graph);
5. BigVGAN → 22050 Hz float audio, clamped, turned into int16 as infer_v2 does.

Each segment is yielded as soon as it is rendered (long text streams); infer_v2's 200 ms of
silence goes between segments.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..base import EngineError, Voice
from .conditioning import AcousticConditioner, AcousticPrompt, load_mel_settings
from .gpt import (
    CORE_GRAPH,
    EMOTION_GRAPH,
    EMOTIONS,
    SPEAKER_GRAPH,
    GPTConfig,
    REEXPORT_HINT,
    GPTRuntime,
    apply_emotion_vector,
    emotion_indices,
    merge_emovec,
    scale_emotion_weights,
    trim_codes,
)
from .model import EXPORT_HINT, IndexTTSModel, ModelError
from .s2mel import GRAPH_S2MEL_ESTIMATOR, GRAPH_S2MEL_FRONT, S2Mel
from .batched import generate_batch
from .sampling import Sampler, SamplingOptions
from .speculative import SpeculativeDecoder
from .text import NoSpeakableTextError, TextFrontend
from .vocoder import GRAPH_BIGVGAN, Vocoder
from .voice import (
    CONDITIONING_FORMAT,
    ConditioningStore,
    VoiceConditioning,
    VoiceError,
    VoiceSpec,
    check_clip,
    discover_voices,
    prepare_clip_audio,
    read_clip,
)

_LOGGER = logging.getLogger(__name__)

ENGINE_NAME = "indextts"
SAMPLE_RATE = 22050

CONDITIONING_GRAPHS = (
    "w2v_bert",
    "semantic_codec",
    "campplus",
    "prompt_regulator",
    SPEAKER_GRAPH,
    EMOTION_GRAPH,
)
"""Graphs needed only to prepare a voice; released once every voice is prepared."""

CORE_INT8_GRAPH = "gpt_int8"
ESTIMATOR_INT8_GRAPH = "s2mel_estimator_int8"


def serving_graphs(options: IndexTTSOptions) -> tuple[str, ...]:
    """The graphs a serving process holds: the GPT core, s2mel and BigVGAN (and the int8 GPT
    core as the draft of speculative decoding)."""
    if options.int8:
        return (CORE_INT8_GRAPH, GRAPH_S2MEL_FRONT, ESTIMATOR_INT8_GRAPH, GRAPH_BIGVGAN)
    draft = (CORE_INT8_GRAPH,) if options.speculative else ()
    return (CORE_GRAPH, GRAPH_S2MEL_FRONT, GRAPH_S2MEL_ESTIMATOR, GRAPH_BIGVGAN, *draft)


@dataclass(frozen=True)
class IndexTTSOptions:
    """Engine options. Everything but the last group changes the audio (and the fingerprint)."""

    # GPT decoding (infer_v2 defaults, except one beam)
    do_sample: bool = True
    top_k: int = 30
    top_p: float = 0.8
    temperature: float = 0.8
    repetition_penalty: float = 10.0
    max_mel_tokens: int = 1500
    seed: int | None = None
    """Seed for sampling and diffusion noise; each sentence starts from it, so the same text
    gives the same audio. None: fresh randomness every time."""

    # s2mel
    diffusion_steps: int = 25
    cfg_rate: float = 0.7

    # emotion: 8 weights in EMOTIONS order (happy, angry, sad, afraid, disgusted,
    # melancholic, surprised, calm); None keeps the emotion of the voice clip
    emotion: tuple[float, ...] | None = None
    emotion_strength: float = 1.0
    """infer_v2's emo_alpha for an explicit emotion vector: weights are scaled by it (0..1)."""

    # precision
    int8: bool = False
    """Use the int8 GPT core and diffusion step (export with --int8): about 3x faster decoding
    and 2.5x faster diffusion on CPUs with VNNI/AMX, slightly different audio."""

    speculative: int = 0
    """Draft this many GPT codes per fp32 pass with the int8 core (export with --int8; 0: off).
    Greedy: the fp32 codes. Sampling: the fp32 distribution, though a seed gives another draw."""

    # text
    language: str | None = None
    """Force "zh" or "en" text normalisation; None decides per text as the official code."""
    max_text_tokens_per_segment: int = 120
    interval_silence_ms: int = 200

    # no effect on audio
    threads: int = 0
    """ONNX Runtime intra-op threads per session (0: ONNX Runtime's default)."""
    verify_model: bool = True
    """Check the sha256 of every model file at start-up (size is always checked)."""
    min_clip_seconds: float = 1.0
    max_clip_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.emotion is not None:
            weights = tuple(float(x) for x in self.emotion)
            if len(weights) != len(EMOTIONS):
                raise ValueError(f"emotion needs {len(EMOTIONS)} weights ({', '.join(EMOTIONS)}), got {len(weights)}")
            if any(w < 0 for w in weights):
                raise ValueError("emotion weights must not be negative")
            object.__setattr__(self, "emotion", weights)
        if self.diffusion_steps < 1:
            raise ValueError("diffusion_steps must be at least 1")
        if self.cfg_rate < 0:
            raise ValueError("cfg_rate must not be negative")
        if self.speculative < 0:
            raise ValueError("speculative must not be negative")
        if self.speculative and self.int8:
            raise ValueError("speculative decoding verifies with the fp32 GPT; it does not combine with int8")
        if self.max_mel_tokens < 1:
            raise ValueError("max_mel_tokens must be at least 1")
        if self.max_text_tokens_per_segment < 1:
            raise ValueError("max_text_tokens_per_segment must be at least 1")
        self.sampling()  # validates the decoding options

    def sampling(self) -> SamplingOptions:
        return SamplingOptions(
            do_sample=self.do_sample,
            top_k=self.top_k,
            top_p=self.top_p,
            temperature=self.temperature,
            repetition_penalty=self.repetition_penalty,
            seed=self.seed,
        )

    def audio_key(self) -> dict[str, Any]:
        """The options that change audio (what the voice fingerprint covers)."""
        data = asdict(self)
        for name in ("threads", "verify_model", "min_clip_seconds", "max_clip_seconds"):
            data.pop(name)
        if data["emotion"] is not None:
            data["emotion"] = list(data["emotion"])
        else:
            data.pop("emotion_strength")  # only scales an explicit emotion vector
        if not self.do_sample:
            data.pop("speculative")  # greedy speculative decoding gives the fp32 codes
        return data


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


@dataclass
class _LoadedVoice:
    voice: Voice
    spec: VoiceSpec
    conditioning: VoiceConditioning
    prompt: AcousticPrompt
    emotion_rows: list[int]


def to_pcm16(wav: np.ndarray) -> bytes:
    """infer_v2: ``(wav * 32767).clamp(-32767, 32767).to(int16)`` of the clamped float audio."""
    scaled = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0) * np.float32(32767)
    return np.clip(scaled, -32767, 32767).astype("<i2").tobytes()


class IndexTTSEngine:
    """IndexTTS-2 voices from a folder of clips, spoken with ONNX Runtime."""

    name = ENGINE_NAME

    def __init__(
        self,
        model: IndexTTSModel,
        voices: Sequence[_LoadedVoice],
        options: IndexTTSOptions,
        frontend: TextFrontend,
        problems: Sequence[str] = (),
    ) -> None:
        self.model = model
        self.options = options
        self.frontend = frontend
        self.problems = list(problems)
        self._voices = {v.voice.name: v for v in voices}
        self.voices_dir: Path | None = None
        """Set by `load`: the folder `reload_voices` reads again."""
        self._store: ConditioningStore | None = None
        self._reload_lock = threading.Lock()
        cfg = model.config
        graphs = serving_graphs(options)
        core, _front, estimator, _vocoder = graphs[:4]
        for graph in graphs:
            if not model.has_graph(graph):
                fast = options.int8 or options.speculative
                hint = "export the model again with --int8, or leave int8 and speculative off" if fast else EXPORT_HINT
                raise ModelError(f"{model.path}: has no {graph}.onnx; {hint}")
        arrays = {name: model.array(file) for name, file in cfg["gpt_arrays"].items()}
        gpt_config = GPTConfig.from_mapping(cfg["gpt"])
        self.gpt = GPTRuntime(model.session(core), arrays, gpt_config)
        self.speculative: SpeculativeDecoder | None = None
        if options.speculative:
            if not self.gpt.maskable:
                raise ModelError(f"{model.path}: {REEXPORT_HINT}")
            draft = GPTRuntime(model.session(CORE_INT8_GRAPH), arrays, gpt_config)
            self.speculative = SpeculativeDecoder(self.gpt, draft, options.speculative)
        self.s2mel = S2Mel(model.session, estimator)
        self.vocoder = Vocoder(model.session)
        for graph in graphs:
            model.session(graph)
        self.emo_num = [int(n) for n in cfg["emo_num"]]
        self.emo_matrix = model.array(cfg["emo_matrix"])
        self.spk_matrix = model.array(cfg["spk_matrix"])

    # -- loading ----------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        voices_dir: str | Path,
        conditioning_dir: str | Path,
        options: IndexTTSOptions | None = None,
        *,
        sessions: dict[str, Any] | None = None,
        allow_empty: bool = False,
    ) -> IndexTTSEngine:
        """Open and verify the model folder, prepare (or reuse) every voice, keep only the
        sessions synthesis needs. Raises ModelError for a bad model folder and EngineError
        when no voice is usable (unless `allow_empty`: voices may be uploaded later); a bad
        clip only skips its voice (logged)."""
        options = options or IndexTTSOptions()
        model = IndexTTSModel.open(model_dir, verify=options.verify_model, sessions=sessions, threads=options.threads)
        if not model.config.get("speaks", False):
            raise ModelError(
                f"{Path(model_dir)}: exported with --gpt-only, it has no acoustic graphs; export it "
                "again with --w2v-bert, --semantic-codec, --campplus and --bigvgan"
            )
        try:
            frontend = TextFrontend.load(model.file(model.config["bpe_model"]), language=options.language)
        except (OSError, RuntimeError) as err:
            raise ModelError(f"{model.path / 'bpe.model'}: unreadable tokenizer ({err})") from err
        specs, problems = discover_voices(Path(voices_dir))
        for problem in problems:
            _LOGGER.warning("Voice skipped: %s", problem)
        store = ConditioningStore(Path(conditioning_dir), model.fingerprint)
        voices, more = prepare_voices(model, specs, store, options)
        problems += more
        if not voices and not allow_empty:
            model.close()
            detail = "; ".join(problems) if problems else f"no NAME.wav in {voices_dir}"
            raise EngineError(f"IndexTTS has no usable voice ({detail})")
        try:
            engine = cls(model, voices, options, frontend, problems)
        except ModelError:
            model.close()
            raise
        engine.voices_dir = Path(voices_dir)
        engine._store = store
        return engine

    def reload_voices(self) -> list[str]:
        """Read the voices folder again (a clip was added, changed or removed while serving):
        prepare new and changed clips, drop removed ones, keep the rest as they are. Returns
        the problems found (one message per skipped clip). Slow when a clip needs preparing:
        call it from a worker thread; synthesis goes on meanwhile with the voices it had."""
        if self.voices_dir is None or self._store is None:
            raise EngineError("this IndexTTS engine was not loaded from a voices folder")
        with self._reload_lock:
            specs, problems = discover_voices(self.voices_dir)
            kept = {
                spec.name: self._voices[spec.name]
                for spec in specs
                if spec.name in self._voices and self._voices[spec.name].spec == spec
            }
            changed = [spec for spec in specs if spec.name not in kept]
            prepared, more = prepare_voices(self.model, changed, self._store, self.options)
            voices = {**kept, **{loaded.voice.name: loaded for loaded in prepared}}
            # One assignment: a request sees the old set or the new one, never half of each.
            self._voices = {name: voices[name] for name in sorted(voices)}
            self.problems = problems + more
            return self.problems

    # -- Engine protocol --------------------------------------------------------------------

    def voices(self) -> Sequence[Voice]:
        return [v.voice for v in self._voices.values()]

    def voice_for_language(self, language: str) -> Voice | None:
        return None  # no preference: the catalogue takes the first voice of the language

    def synthesize(self, text: str, voice: Voice, *, opening: bool = True) -> Iterator[bytes]:
        loaded = self._voices.get(voice.name)
        if loaded is None:
            raise EngineError(f"IndexTTS has no voice {voice.name!r}; it has {', '.join(self._voices) or 'none'}")
        segments = self.text_segments(text)
        return self._stream(segments, loaded)

    def close(self) -> None:
        self.model.close()

    # -- synthesis --------------------------------------------------------------------------

    def text_segments(self, text: str) -> list[list[int]]:
        try:
            segments = self.frontend.segment_ids(text, self.options.max_text_tokens_per_segment)
        except NoSpeakableTextError as err:
            raise EngineError(str(err)) from err
        segments = [s for s in segments if s]
        if not segments:
            raise EngineError(f"Nothing to speak in {text[:40]!r}: send text with at least one letter or digit.")
        return segments

    def _stream(self, segments: list[list[int]], loaded: _LoadedVoice) -> Iterator[bytes]:
        rng = np.random.default_rng(self.options.seed)
        silence = b"\x00\x00" * int(SAMPLE_RATE * self.options.interval_silence_ms / 1000)
        spoken = False
        for ids in segments:
            result = self.render(ids, loaded.voice, rng=rng)
            if result.wav.size == 0:
                continue
            if spoken and silence:
                yield silence
            yield to_pcm16(result.wav)
            spoken = True
        if not spoken:
            raise EngineError("IndexTTS produced no audio for this text (the model stopped at once)")

    def prefix(self, voice: Voice) -> np.ndarray:
        """The GPT conditioning prefix of `voice` with the engine's options."""
        loaded = self._voices[voice.name]
        return self.gpt.conditioning_prefix(loaded.conditioning.speaker_latents, self.emovec(voice))

    def synthesize_batch(self, texts: Sequence[str], voice: Voice) -> list[bytes | EngineError]:
        """For each text, its PCM as ``b"".join(synthesize(text, voice))`` gives it, or the
        EngineError that says why it has none; the GPT decoding of every text's n-th segment
        runs in one batch (pre-renders, late renders). Each text's seeded draws come in the
        same order as alone (its GPT, then its diffusion noise, segment after segment)."""
        loaded = self._voices.get(voice.name)
        if loaded is None:
            raise EngineError(f"IndexTTS has no voice {voice.name!r}; it has {', '.join(self._voices) or 'none'}")
        if not self.gpt.maskable:
            raise ModelError(f"{self.model.path}: {REEXPORT_HINT}")
        results: list[bytes | EngineError] = []
        segments: list[list[list[int]]] = []
        for text in texts:
            try:
                segments.append(self.text_segments(text))
                results.append(b"")
            except EngineError as err:
                segments.append([])
                results.append(err)
        rngs = [np.random.default_rng(self.options.seed) for _ in texts]
        silence = b"\x00\x00" * int(SAMPLE_RATE * self.options.interval_silence_ms / 1000)
        prefix = self.prefix(voice)
        for index in range(max((len(s) for s in segments), default=0)):
            rows = [t for t, text_segments in enumerate(segments) if index < len(text_segments)]
            raw = generate_batch(
                self.gpt,
                [prefix] * len(rows),
                [segments[t][index] for t in rows],
                [Sampler(self.options.sampling(), rngs[t]) for t in rows],
                self.options.max_mel_tokens,
            )
            for t, codes in zip(rows, raw):
                result = self.render(segments[t][index], voice, rng=rngs[t], raw_codes=codes)
                if result.wav.size:
                    pcm = to_pcm16(result.wav)
                    results[t] = results[t] + silence + pcm if results[t] else pcm
        return [
            EngineError(f"IndexTTS produced no audio for {text[:40]!r} (the model stopped at once)")
            if result == b""
            else result
            for text, result in zip(texts, results)
        ]

    def emovec(self, voice: Voice) -> np.ndarray:
        """The emotion vector a sentence in `voice` uses with the engine's options."""
        loaded = self._voices[voice.name]
        cond = loaded.conditioning
        emovec = merge_emovec(cond.emovec_speaker, cond.emovec_emotion, 1.0)
        if self.options.emotion is not None:
            weights = scale_emotion_weights(self.options.emotion, self.options.emotion_strength)
            emovec = apply_emotion_vector(emovec, weights, self.emo_matrix, self.emo_num, loaded.emotion_rows)
        return emovec

    def render(
        self,
        text_ids: Sequence[int],
        voice: Voice,
        *,
        rng: np.random.Generator | None = None,
        noise: np.ndarray | None = None,
        raw_codes: np.ndarray | None = None,
    ) -> SegmentResult:
        """One segment of text ids → codes, latents, mel and waveform.

        Diffusion noise is `noise` when given, else drawn from `rng` after the GPT's draws
        (``rng.standard_normal((1, 80, frames), dtype=float32)``), so a test can reproduce it.
        `raw_codes`: the GPT's codes when they were decoded already (in a batch).
        """
        import time

        opts = self.options
        rng = rng if rng is not None else np.random.default_rng(opts.seed)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        prefix = self.prefix(voice)
        if raw_codes is not None:
            raw = raw_codes
        elif self.speculative is not None:
            raw = self.speculative.generate(prefix, text_ids, Sampler(opts.sampling(), rng), opts.max_mel_tokens)
        else:
            raw = self.gpt.generate(prefix, text_ids, Sampler(opts.sampling(), rng), opts.max_mel_tokens)
        loaded = self._voices[voice.name]
        if raw.size and raw[-1] != self.gpt.config.stop_mel_token:
            _LOGGER.warning(
                "Generation stopped at max_mel_tokens (%d) for %d text tokens; consider a smaller "
                "max_text_tokens_per_segment", opts.max_mel_tokens, len(text_ids)
            )
        codes = trim_codes(raw, self.gpt.config.stop_mel_token)
        timings["gpt_generate"] = time.perf_counter() - start
        ids = list(int(i) for i in text_ids)
        if codes.size == 0:
            empty = np.zeros((0,), dtype=np.float32)
            return SegmentResult(ids, codes, np.zeros((1, 0, self.gpt.config.model_dim), np.float32), empty, empty, None, timings)
        start = time.perf_counter()
        latents = self.gpt.latents(prefix, text_ids, codes)
        timings["gpt_forward"] = time.perf_counter() - start
        start = time.perf_counter()
        cond = self.s2mel.condition(latents, codes[None])
        mu = np.concatenate([loaded.prompt.prompt_condition, cond], axis=1)
        if noise is None:
            mel_bins = loaded.prompt.ref_mel.shape[1]
            noise = rng.standard_normal((1, mel_bins, mu.shape[1]), dtype=np.float32)
        mel = self.s2mel.sample(
            mu,
            loaded.prompt.ref_mel,
            loaded.prompt.style,
            steps=opts.diffusion_steps,
            cfg_rate=opts.cfg_rate,
            noise=noise,
        )
        timings["s2mel"] = time.perf_counter() - start
        start = time.perf_counter()
        wav = self.vocoder(mel)
        timings["bigvgan"] = time.perf_counter() - start
        return SegmentResult(ids, codes, latents, mel, wav, noise, timings)


# -- voice preparation ---------------------------------------------------------------------------


def _fingerprint(model: IndexTTSModel, spec: VoiceSpec, options: IndexTTSOptions) -> str:
    data = {
        "engine": ENGINE_NAME,
        "model": model.fingerprint,
        "clip": spec.clip_sha256,
        "conditioning": CONDITIONING_FORMAT,
        "options": options.audio_key(),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def condition_voice(model: IndexTTSModel, conditioner: AcousticConditioner, clip: Path, options: IndexTTSOptions) -> VoiceConditioning:
    """Everything synthesis needs from one clip (raises VoiceError for a bad clip)."""
    samples, rate = read_clip(clip)
    check_clip(clip, samples, rate, options.min_clip_seconds, options.max_clip_seconds)
    audio = prepare_clip_audio(samples, rate, float(model.config.get("max_prompt_seconds", 15.0)))
    prompt = conditioner.prepare(audio.speaker_16k, audio.speaker_22k)
    emotion_features = conditioner.semantic_embedding(audio.emotion_16k)
    speaker = model.session(SPEAKER_GRAPH)
    emotion = model.session(EMOTION_GRAPH)
    (latents,) = speaker.run(None, {"features": prompt.spk_cond_emb})
    (emovec_speaker,) = emotion.run(None, {"features": prompt.spk_cond_emb})
    (emovec_emotion,) = emotion.run(None, {"features": emotion_features})
    return VoiceConditioning(
        speaker_latents=latents,
        emovec_speaker=emovec_speaker,
        emovec_emotion=emovec_emotion,
        style=prompt.style,
        prompt_condition=prompt.prompt_condition,
        ref_mel=prompt.ref_mel,
        meta={"clip": clip.name, "rate": rate, "seconds": round(samples.shape[0] / rate, 3)},
    )


def prepare_voices(
    model: IndexTTSModel, specs: Sequence[VoiceSpec], store: ConditioningStore, options: IndexTTSOptions
) -> tuple[list[_LoadedVoice], list[str]]:
    """Load every voice's conditioning from the store, computing (and storing) the missing ones.

    The conditioning graphs are opened only if some voice needs preparing, and released after.
    """
    loaded: list[_LoadedVoice] = []
    problems: list[str] = []
    conditioner: AcousticConditioner | None = None
    try:
        for spec in specs:
            conditioning = store.load(spec.clip_sha256)
            if conditioning is None:
                if conditioner is None:
                    conditioner = AcousticConditioner(model.session, load_mel_settings(model.path))
                try:
                    _LOGGER.info("Preparing voice %s from %s", spec.name, spec.clip)
                    conditioning = condition_voice(model, conditioner, spec.clip, options)
                except VoiceError as err:
                    _LOGGER.warning("Voice %s skipped: %s", spec.name, err)
                    problems.append(str(err))
                    continue
                except ModelError:
                    raise
                except Exception as err:  # noqa: BLE001 - one odd clip must not stop the others
                    _LOGGER.exception("Voice %s skipped: preparing %s failed", spec.name, spec.clip)
                    problems.append(f"{spec.clip}: preparing the voice failed ({err})")
                    continue
                try:
                    store.save(spec.clip_sha256, conditioning)
                except OSError as err:
                    _LOGGER.warning("Voice %s: cannot store its conditioning (%s); it is prepared again next start", spec.name, err)
            voice = Voice(
                name=spec.name,
                engine=ENGINE_NAME,
                sample_rate=SAMPLE_RATE,
                languages=spec.languages,
                description=spec.description,
                version=str(model.config.get("version") or "") or None,
                attribution_name="IndexTTS2 (bilibili Index team)",
                attribution_url="https://github.com/index-tts/index-tts",
                fingerprint=_fingerprint(model, spec, options),
                extra={"clip": str(spec.clip)},
            )
            prompt = AcousticPrompt(
                spk_cond_emb=np.zeros((1, 0, 1024), dtype=np.float32),
                style=conditioning.style,
                prompt_condition=conditioning.prompt_condition,
                ref_mel=conditioning.ref_mel,
            )
            rows = emotion_indices(
                conditioning.style, model.array(model.config["spk_matrix"]), [int(n) for n in model.config["emo_num"]]
            )
            loaded.append(_LoadedVoice(voice, spec, conditioning, prompt, rows))
    finally:
        if conditioner is not None:
            conditioner.close()
        opened = any(model.is_loaded(graph) for graph in CONDITIONING_GRAPHS)
        for graph in CONDITIONING_GRAPHS:
            model.release(graph)
        if opened:
            release_memory()
    return loaded, problems


def release_memory() -> None:
    """Give freed heap back to the OS (glibc keeps it otherwise): after the conditioning
    sessions are dropped, serving should not carry their high-water mark."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
