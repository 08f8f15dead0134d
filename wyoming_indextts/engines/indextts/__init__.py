"""IndexTTS-2 on ONNX Runtime: model folder, text frontend, voice conditioning, GPT decode,
s2mel, vocoder and the engine. Torch-free: onnxruntime, numpy, sentencepiece, soundfile."""

from .engine import IndexTTSEngine
from .gpt import EMOTIONS
from .model import IndexTTSModel, ModelError
from .options import IndexTTSOptions
from .pipeline import Pipeline, SegmentResult
from .voice import VoiceError

__all__ = [
    "EMOTIONS",
    "IndexTTSEngine",
    "IndexTTSModel",
    "IndexTTSOptions",
    "ModelError",
    "Pipeline",
    "SegmentResult",
    "VoiceError",
]
