"""IndexTTS-2 on ONNX Runtime: model folder, text frontend, voice conditioning, GPT decode,
s2mel, vocoder and the engine. Torch-free: onnxruntime, numpy, sentencepiece, soundfile."""

from .engine import IndexTTSEngine, IndexTTSOptions, SegmentResult
from .gpt import EMOTIONS
from .model import IndexTTSModel, ModelError
from .voice import VoiceError

__all__ = [
    "EMOTIONS",
    "IndexTTSEngine",
    "IndexTTSModel",
    "IndexTTSOptions",
    "ModelError",
    "SegmentResult",
    "VoiceError",
]
