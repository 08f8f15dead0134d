"""IndexTTS-2 as a wyoming-indextts engine: ONNX Runtime + numpy, no torch.

Per sentence, as ``IndexTTS2.infer_generator`` does per segment:

1. text → normalised BPE ids, cut into segments of at most ``max_text_tokens_per_segment``;
2. emotion vector: ``merge_emovec`` of the voice's speaker and emotion vectors (alpha 1, the
   clip is its own emotion reference), or, with an explicit 8-emotion vector, its mix with
   the emotion matrix rows chosen by the voice's style;
3. to 5. the `Pipeline`: GPT codes and latents, s2mel, BigVGAN → float audio at the folder's
   rate (22050 Hz for IndexTTS-2), clamped, turned into int16 as infer_v2 does.

Each segment is yielded as soon as it is rendered (long text streams); infer_v2's 200 ms of
silence goes between segments. Options live in `options`, voice preparation in `preparation`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..base import EngineError, Voice
from .batched import generate_batch
from .gpt import REEXPORT_HINT
from .model import IndexTTSModel, ModelError
from .options import IndexTTSOptions
from .pipeline import Pipeline, SegmentResult, to_pcm16
from .preparation import ENGINE_NAME, LoadedVoice, prepare_voices
from .sampling import Sampler
from .text import NoSpeakableTextError
from .versions import open_pipeline
from .voice import ConditioningStore, discover_voices

_LOGGER = logging.getLogger(__name__)

class IndexTTSEngine:
    """IndexTTS-2 voices from a folder of clips, spoken with ONNX Runtime."""

    name = ENGINE_NAME

    def __init__(self, pipeline: Pipeline, voices: Sequence[LoadedVoice], problems: Sequence[str] = ()) -> None:
        self.pipeline = pipeline
        self.model: IndexTTSModel = pipeline.model
        self.options: IndexTTSOptions = pipeline.options
        self.problems = list(problems)
        self._voices = {v.voice.name: v for v in voices}
        self.voices_dir: Path | None = None
        """Set by `load`: the folder `reload_voices` reads again."""
        self._store: ConditioningStore | None = None
        self._reload_lock = threading.Lock()

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
        frontend: Any = None,
    ) -> IndexTTSEngine:
        """Open and verify the model folder, prepare (or reuse) every voice, keep only the
        sessions synthesis needs. Raises ModelError for a bad model folder and EngineError
        when no voice is usable (unless `allow_empty`: voices may be uploaded later); a bad
        clip only skips its voice (logged). `frontend`: text → token id segments, instead of
        the folder's own (an IndexTTS-2.5 folder needs one that gives `LanguageIds`)."""
        options = options or IndexTTSOptions()
        model = IndexTTSModel.open(model_dir, verify=options.verify_model, sessions=sessions, threads=options.threads)
        if not model.config.get("speaks", False):
            raise ModelError(
                f"{Path(model_dir)}: exported with --gpt-only, it has no acoustic graphs; export it "
                "again with --w2v-bert, --semantic-codec, --campplus and --bigvgan"
            )
        try:
            pipeline = open_pipeline(model, options, frontend)
        except ModelError:
            model.close()
            raise
        specs, problems = discover_voices(Path(voices_dir))
        for problem in problems:
            _LOGGER.warning("Voice skipped: %s", problem)
        store = ConditioningStore(Path(conditioning_dir), model.fingerprint)
        voices, more = prepare_voices(model, specs, store, options)
        problems += more
        if not pipeline.speaks_at_speed:
            for spec in specs:
                if spec.speed is not None:
                    _LOGGER.warning("Voice %s: speed ignored (IndexTTS-2 has no speech rate)", spec.name)
                    problems.append(f"{spec.clip.with_suffix('.yaml')}: speed ignored, IndexTTS-2 has no speech rate")
        if not voices and not allow_empty:
            model.close()
            detail = "; ".join(problems) if problems else f"no NAME.wav in {voices_dir}"
            raise EngineError(f"IndexTTS has no usable voice ({detail})")
        engine = cls(pipeline, voices, problems)
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
        segments = self.text_segments(text, loaded.spec.languages)
        return self._stream(segments, loaded)

    def close(self) -> None:
        self.model.close()

    # -- synthesis --------------------------------------------------------------------------

    def text_segments(self, text: str, languages: Sequence[str] = ()) -> list[list[int]]:
        """Token id segments of `text` in a voice that speaks `languages` (`Pipeline.text_segments`)."""
        try:
            segments = self.pipeline.text_segments(text, languages)
        except NoSpeakableTextError as err:
            raise EngineError(str(err)) from err
        segments = [s for s in segments if s]
        if not segments:
            raise EngineError(f"Nothing to speak in {text[:40]!r}: send text with at least one letter or digit.")
        return segments

    def _stream(self, segments: list[list[int]], loaded: LoadedVoice) -> Iterator[bytes]:
        rng = np.random.default_rng(self.options.seed)
        silence = self._silence()
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

    def _silence(self) -> bytes:
        """infer_v2's pause between segments."""
        return b"\x00\x00" * int(self.pipeline.sample_rate * self.options.interval_silence_ms / 1000)

    def prefix(self, voice: Voice) -> np.ndarray:
        """The GPT conditioning prefix of `voice` with the engine's options."""
        loaded = self._voices[voice.name]
        return self.pipeline.prefix(loaded.conditioning, loaded.emotion_rows)

    def synthesize_batch(
        self, texts: Sequence[str], voice: Voice, pause: Callable[[], None] | None = None
    ) -> list[bytes | EngineError]:
        """For each text, its PCM as ``b"".join(synthesize(text, voice))`` gives it, or the
        EngineError that says why it has none; the GPT decoding of every text's n-th segment
        runs in one batch (pre-renders, the render queue). Each text's seeded draws come in the
        same order as alone (its GPT, then its diffusion noise, segment after segment).
        `pause` is called between steps (see `generate_batch`) and before each diffusion step."""
        loaded = self._voices.get(voice.name)
        if loaded is None:
            raise EngineError(f"IndexTTS has no voice {voice.name!r}; it has {', '.join(self._voices) or 'none'}")
        if not self.pipeline.gpt.maskable:
            raise ModelError(f"{self.model.path}: {REEXPORT_HINT}")
        results: list[bytes | EngineError] = []
        segments: list[list[list[int]]] = []
        for text in texts:
            try:
                segments.append(self.text_segments(text, loaded.spec.languages))
                results.append(b"")
            except EngineError as err:
                segments.append([])
                results.append(err)
        rngs = [np.random.default_rng(self.options.seed) for _ in texts]
        silence = self._silence()
        prefix = self.prefix(voice)
        for index in range(max((len(s) for s in segments), default=0)):
            rows = [t for t, text_segments in enumerate(segments) if index < len(text_segments)]
            raw = generate_batch(
                self.pipeline.gpt,
                [prefix] * len(rows),
                [segments[t][index] for t in rows],
                [Sampler(self.options.sampling(), rngs[t]) for t in rows],
                self.options.max_mel_tokens,
                pause=pause,
            )
            for t, codes in zip(rows, raw):
                result = self.render(segments[t][index], voice, rng=rngs[t], raw_codes=codes, pause=pause)
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
        return self.pipeline.emovec(loaded.conditioning, loaded.emotion_rows)

    def render(
        self,
        text_ids: Sequence[int],
        voice: Voice,
        *,
        rng: np.random.Generator | None = None,
        noise: np.ndarray | None = None,
        raw_codes: np.ndarray | None = None,
        pause: Callable[[], None] | None = None,
    ) -> SegmentResult:
        """`Pipeline.render` of one segment in `voice` (see there)."""
        loaded = self._voices[voice.name]
        return self.pipeline.render(
            text_ids,
            loaded.conditioning,
            loaded.emotion_rows,
            rng=rng,
            noise=noise,
            raw_codes=raw_codes,
            speed=loaded.spec.speed,
            pause=pause,
        )
