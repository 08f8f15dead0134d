"""The model-folder contract: what `wyoming-indextts export` writes and the runtime reads.

One place for the file and graph names, the format version, the manifest and side-file field
names, and the numbers of the model family (sample rate, hop, mel frames per GPT code, prompt
length). The exporter (`wyoming_indextts.export`) and the runtime (`engines.indextts`) both
import them from here, so the two cannot drift apart.

The numbers below are IndexTTS-2's, and they are the defaults for folders that do not say
otherwise: the exporter writes the real ones (taken from the checkpoints) into
`acoustic.json`, and the runtime reads them back with `SpeechParams.read`, so another model
of the family (IndexTTS-2.5: 25 Hz codes) needs a new entry in `KNOWN_MODELS`, not new code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# -- files ------------------------------------------------------------------------------------

MANIFEST_NAME = "manifest.json"
CONFIG_NAME = "config.json"
"""The values the runtime needs from the official config.yaml (GPT sizes, arrays, emotions)."""
ACOUSTIC_PARAMS_FILE = "acoustic.json"
"""Side file with the numbers the runtime needs besides the graphs (mel settings, rates)."""
BPE_FILE = "bpe.model"
EMO_MATRIX_FILE = "emo_matrix.npy"
SPK_MATRIX_FILE = "spk_matrix.npy"

FORMAT_NAME = "wyoming-indextts-model"
FORMAT_VERSION = 2
"""Bumped whenever a change in the exporter makes older folders unusable by this runtime.
2: the diffusion step takes `target_start` and returns the new frames only."""

# -- which model a folder holds ---------------------------------------------------------------

MODEL_FIELD = "model"
"""Manifest field naming the model family of the folder (one of KNOWN_MODELS)."""
INDEXTTS_2 = "indextts-2"
INDEXTTS_25 = "indextts-2.5"
"""25 Hz codes decoded by its own codec (CODEC_DECODE_GRAPH), a language id, a speech rate."""
KNOWN_MODELS = (INDEXTTS_2, INDEXTTS_25)
DEFAULT_MODEL = INDEXTTS_2
"""What a folder written before MODEL_FIELD existed holds."""

# -- graphs (a graph NAME is stored as NAME.onnx) ---------------------------------------------

GPT_GRAPH = "gpt"
GPT_INT8_GRAPH = "gpt_int8"
SPEAKER_GRAPH = "gpt_speaker_conditioning"
EMOTION_GRAPH = "gpt_emotion_conditioning"
W2V_BERT_GRAPH = "w2v_bert"
SEMANTIC_CODEC_GRAPH = "semantic_codec"
CAMPPLUS_GRAPH = "campplus"
PROMPT_REGULATOR_GRAPH = "prompt_regulator"
S2MEL_FRONT_GRAPH = "s2mel_front"
S2MEL_ESTIMATOR_GRAPH = "s2mel_estimator"
S2MEL_ESTIMATOR_INT8_GRAPH = "s2mel_estimator_int8"
BIGVGAN_GRAPH = "bigvgan"
CODEC_DECODE_GRAPH = "codec_decode"
"""IndexTTS-2.5: 25 Hz codes → 50 Hz features (replaces SEMANTIC_CODEC and S2MEL_FRONT)."""


def graph_file(name: str) -> str:
    """The file a graph is stored in, relative to the model folder."""
    return f"{name}.onnx"


# -- numbers of the model family (IndexTTS-2), the defaults of SpeechParams --------------------

SAMPLE_RATE = 22050
"""BigVGAN's output rate, which is also the rate of the reference mel of a voice."""
SEMANTIC_SAMPLE_RATE = 16000
"""w2v-BERT and CAMPPlus read 16 kHz audio."""
HOP_LENGTH = 256
"""Output samples per mel frame."""
MEL_FRAMES_PER_CODE = 1.72
"""s2mel's length regulator: `int(codes * 1.72)` mel frames (50 Hz codes, 86.13 Hz mel)."""
MAX_PROMPT_SECONDS = 15.0
"""infer_v2 cuts speaker and emotion clips to 15 s (`_load_and_cut_audio(..., 15)`)."""

# acoustic.json field names
MEL_FIELD = "mel"
SEMANTIC_SAMPLE_RATE_FIELD = "semantic_sample_rate"
OUTPUT_SAMPLE_RATE_FIELD = "output_sample_rate"
HOP_LENGTH_FIELD = "hop_length"
MEL_FRAMES_PER_CODE_FIELD = "mel_frames_per_code"
W2V_LAYER_FIELD = "w2v_layer"
# config.json field names read outside the GPT
MAX_PROMPT_SECONDS_FIELD = "max_prompt_seconds"


@dataclass(frozen=True)
class SpeechParams:
    """The numbers of a model folder that shape its audio (from acoustic.json)."""

    sample_rate: int = SAMPLE_RATE
    hop_length: int = HOP_LENGTH
    mel_frames_per_code: float = MEL_FRAMES_PER_CODE

    @classmethod
    def from_mapping(cls, params: dict[str, Any]) -> SpeechParams:
        return cls(
            sample_rate=int(params.get(OUTPUT_SAMPLE_RATE_FIELD, SAMPLE_RATE)),
            hop_length=int(params.get(HOP_LENGTH_FIELD, HOP_LENGTH)),
            mel_frames_per_code=float(params.get(MEL_FRAMES_PER_CODE_FIELD, MEL_FRAMES_PER_CODE)),
        )

    @classmethod
    def read(cls, model_dir: Path) -> SpeechParams:
        """The folder's acoustic.json; IndexTTS-2's numbers when it has none (--gpt-only)."""
        return cls.from_mapping(read_acoustic_params(model_dir))


def read_acoustic_params(model_dir: Path) -> dict[str, Any]:
    """acoustic.json of `model_dir` as written by the exporter ({} when absent)."""
    path = Path(model_dir) / ACOUSTIC_PARAMS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))
