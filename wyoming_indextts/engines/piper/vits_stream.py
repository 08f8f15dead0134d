"""Stream a Piper (VITS) voice from inside a sentence.

A Piper model is one ONNX graph: text encoder, duration predictor and flow (phonemes → latent
frames `z`, 256 samples each), then a HiFi-GAN decoder (`z` → audio) that takes about two
thirds of the time. The decoder is convolutional with a short receptive field, so decoding `z`
in pieces, each with `CONTEXT_FRAMES` of context on both sides, gives the same samples as
decoding it whole (to float rounding: measured 8e-7 with 10 frames on the bundled voice;
8 frames already differ by 2e-3). Splitting the graph there
lets the first words of a sentence play while the rest is still being decoded.

Only the start of a sentence is cut off (`FIRST_FRAMES`), then the rest is decoded in one go:
every cut costs `2 × CONTEXT_FRAMES` decoded twice, and only the first piece speeds up the time
to first audio.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from ..sessions import providers as session_providers
from ..sessions import shrinking_run

_LOGGER = logging.getLogger(__name__)

DECODER_PREFIX = "/dec/"
CONTEXT_FRAMES = 10
FIRST_FRAMES = 24
"""About 0.28 s of audio at 22050 Hz: enough to start speaking, cheap to decode."""
OUTSIZED_FRAMES = 1000
"""About 12 s of audio. ONNX Runtime's arena keeps the high-water mark of the largest run for
good: one line of digits read as 74 s of audio left the process at 2.3 GB instead of 0.3 GB.
Runs larger than this give their arena memory back afterwards (measured: 315 MB before and
after a 37 s render); ordinary sentences keep the arena's speed."""

_SHRINK_ARENA = shrinking_run()


@dataclass
class StreamingVits:
    front: onnxruntime.InferenceSession
    """phonemes → latent frames z [1, channels, frames]"""
    decoder: onnxruntime.InferenceSession
    """z → audio [1, 1, frames × hop]"""
    latent_name: str
    hop: int

    @classmethod
    def split(
        cls, model_path: Path, hop: int, session_options: onnxruntime.SessionOptions | None = None
    ) -> "StreamingVits | None":
        """Split the graph before its decoder; None for a graph this does not understand (a
        multi-speaker decoder takes a second input), which then runs whole as before."""
        try:
            import onnx
            from onnx.utils import Extractor
        except ImportError:
            _LOGGER.info("onnx is not installed: Piper speaks whole sentences (no streaming within one)")
            return None
        model = onnx.load(str(model_path))
        graph = model.graph
        produced_by_decoder = {out for node in graph.node if node.name.startswith(DECODER_PREFIX) for out in node.output}
        constants = {init.name for init in graph.initializer}
        decoder_inputs = {
            name
            for node in graph.node
            if node.name.startswith(DECODER_PREFIX)
            for name in node.input
            if name and name not in produced_by_decoder and name not in constants
        }
        if len(decoder_inputs) != 1:
            return None
        latent_name = decoder_inputs.pop()
        inputs = [i.name for i in graph.input]
        outputs = [o.name for o in graph.output]
        extractor = Extractor(model)
        front = extractor.extract_model(inputs, [latent_name])
        decoder = extractor.extract_model([latent_name], outputs[:1])
        providers = session_providers()
        return cls(
            front=onnxruntime.InferenceSession(front.SerializeToString(), session_options, providers=providers),
            decoder=onnxruntime.InferenceSession(decoder.SerializeToString(), session_options, providers=providers),
            latent_name=latent_name,
            hop=hop,
        )

    def synthesize(self, phoneme_ids: list[int], scales: np.ndarray, early: bool = True) -> Iterator[np.ndarray]:
        """Float audio of one sentence: with `early`, in two pieces (its first `FIRST_FRAMES`,
        then the rest); without, in one, which saves decoding the context twice."""
        ids = np.array([phoneme_ids], dtype=np.int64)
        feeds = {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64), "scales": scales}
        outsized = len(phoneme_ids) * 4 > OUTSIZED_FRAMES  # a phoneme lasts about 4 frames
        latent = self.front.run(None, feeds, _SHRINK_ARENA if outsized else None)[0]
        frames = latent.shape[2]
        cut = FIRST_FRAMES if early and frames > FIRST_FRAMES + CONTEXT_FRAMES else frames
        yield self._decode(latent, 0, cut)
        if cut < frames:
            yield self._decode(latent, cut, frames)

    def _decode(self, latent: np.ndarray, start: int, end: int) -> np.ndarray:
        """Samples of frames [start, end), decoded with context on both sides, context trimmed."""
        left = max(0, start - CONTEXT_FRAMES)
        right = min(latent.shape[2], end + CONTEXT_FRAMES)
        run_options = _SHRINK_ARENA if right - left > OUTSIZED_FRAMES else None
        audio = self.decoder.run(None, {self.latent_name: latent[:, :, left:right]}, run_options)[0].reshape(-1)
        offset = (start - left) * self.hop
        return audio[offset : offset + (end - start) * self.hop]
