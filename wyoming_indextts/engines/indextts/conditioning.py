"""Voice conditioning on ONNX Runtime: one reference clip -> everything synthesis needs.

`AcousticConditioner.prepare(wav_16k, wav_22k)` mirrors `IndexTTS2._get_speaker_conditioning`:
w2v-BERT 2.0 hidden layer 17 normalised with the w2v-BERT stats (the GPT's conditioning
input), the MaskGCT semantic codec's quantised S_ref, the length-regulated prompt condition
for s2mel, the CAMPPlus style vector and the 22050 Hz reference mel. The result is an
`AcousticPrompt`, saved once per voice as .npz so the heavy graphs (w2v-BERT alone is 411 M
parameters) need not even be loaded when every voice is already prepared.

Resampling and cutting the clip (infer_v2 keeps the first 15 s) are the caller's business:
this module takes audio already at 16 kHz and 22.05 kHz, float in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wyoming_indextts.engines.indextts.format import (
    CAMPPLUS_GRAPH,
    MEL_FIELD,
    PROMPT_REGULATOR_GRAPH,
    SEMANTIC_CODEC_GRAPH,
    W2V_BERT_GRAPH,
    graph_file,
    read_acoustic_params,
)
from wyoming_indextts.engines.indextts.model import open_session
from wyoming_indextts.engines.indextts.features import (
    MelSettings,
    campplus_features,
    reference_mel,
    w2v_bert_features,
)

SessionFor = Callable[[str], Any]
"""Graph name (e.g. "w2v_bert") -> an onnxruntime.InferenceSession for it."""



def directory_sessions(model_dir: Path, threads: int = 0) -> SessionFor:
    """Sessions for `<model_dir>/<name>.onnx`, created on first use and kept (no manifest
    needed: for tests and tools that hold a folder of graphs, not a verified model)."""
    cache: dict[str, Any] = {}

    def session_for(name: str) -> Any:
        if name not in cache:
            path = Path(model_dir) / graph_file(name)
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: export the model folder again (wyoming-indextts export)")
            cache[name] = open_session(path, name, threads=threads)
        return cache[name]

    return session_for


def load_mel_settings(model_dir: Path) -> MelSettings:
    """The s2mel mel settings the exporter wrote to acoustic.json (defaults if absent)."""
    params = read_acoustic_params(model_dir)
    if not params:
        return MelSettings()
    mel = params[MEL_FIELD]
    return MelSettings(
        sampling_rate=int(mel["sampling_rate"]),
        n_fft=int(mel["n_fft"]),
        win_length=int(mel["win_length"]),
        hop_length=int(mel["hop_length"]),
        n_mels=int(mel["n_mels"]),
        fmin=float(mel["fmin"]),
        fmax=None if mel["fmax"] is None else float(mel["fmax"]),
    )


def nearest_frame_index(source_frames: int, target_frames: int) -> np.ndarray:
    """Source frame of each target frame under `F.interpolate(mode="nearest")` (PyTorch's rule).

    The length regulator graphs gather these frames instead of resizing, so the target length
    is a plain input rather than a traced constant.
    """
    if source_frames <= 0 or target_frames <= 0:
        raise ValueError(f"cannot resize {source_frames} frames to {target_frames}")
    out = np.arange(target_frames, dtype=np.int64)
    if target_frames == source_frames:
        return out
    if target_frames == 2 * source_frames:
        return out >> 1
    scale = np.float32(source_frames) / np.float32(target_frames)  # float32, as ATen computes it
    index = np.floor(out.astype(np.float32) * scale).astype(np.int64)
    return np.minimum(index, source_frames - 1)


@dataclass(frozen=True)
class AcousticPrompt:
    """What one reference clip contributes to synthesis."""

    spk_cond_emb: np.ndarray
    """(1, T, 1024) float32: w2v-BERT layer 17, normalised; the GPT's conditioning input."""

    style: np.ndarray
    """(1, 192) float32: CAMPPlus speaker embedding."""

    prompt_condition: np.ndarray
    """(1, L, C) float32: S_ref through the length regulator, L = reference mel frames."""

    ref_mel: np.ndarray
    """(1, 80, L) float32: log mel of the clip at 22050 Hz."""

    def save(self, path: Path) -> None:
        """Write an .npz (atomically: a half-written voice is never read back)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                spk_cond_emb=self.spk_cond_emb,
                style=self.style,
                prompt_condition=self.prompt_condition,
                ref_mel=self.ref_mel,
            )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> AcousticPrompt:
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                prompt = cls(
                    spk_cond_emb=np.asarray(data["spk_cond_emb"], dtype=np.float32),
                    style=np.asarray(data["style"], dtype=np.float32),
                    prompt_condition=np.asarray(data["prompt_condition"], dtype=np.float32),
                    ref_mel=np.asarray(data["ref_mel"], dtype=np.float32),
                )
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"{path}: not a prepared voice ({err}); delete it so the voice is prepared again") from err
        if prompt.prompt_condition.shape[1] != prompt.ref_mel.shape[2]:
            raise ValueError(f"{path}: prompt_condition and ref_mel lengths differ; delete it to prepare the voice again")
        return prompt


class AcousticConditioner:
    """Runs the conditioning graphs; thread-safe as far as ONNX Runtime sessions are."""

    def __init__(self, session_for: SessionFor, mel: MelSettings = MelSettings()) -> None:
        self._session_for = session_for
        self._mel = mel
        self._closed = False

    @classmethod
    def from_dir(cls, model_dir: Path, threads: int = 0) -> AcousticConditioner:
        return cls(directory_sessions(model_dir, threads), load_mel_settings(model_dir))

    def _run(self, graph: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self._closed:
            raise RuntimeError("AcousticConditioner is closed")
        return self._session_for(graph).run(None, feeds)

    def semantic_embedding(self, wav_16k: np.ndarray) -> np.ndarray:
        """`IndexTTS2.get_emb` of a 16 kHz clip: (1, T, 1024). Also the emotion conditioning."""
        features = w2v_bert_features(wav_16k)
        (emb,) = self._run(
            W2V_BERT_GRAPH,
            {"input_features": features.input_features, "attention_mask": features.attention_mask},
        )
        return emb

    def quantize(self, spk_cond_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Semantic codec `quantize`: (codes (1, T) int64, S_ref (1, T, 1024))."""
        codes, s_ref = self._run(SEMANTIC_CODEC_GRAPH, {"spk_cond_emb": spk_cond_emb})
        return codes, s_ref

    def style(self, wav_16k: np.ndarray) -> np.ndarray:
        """CAMPPlus embedding (1, 192) of a 16 kHz clip."""
        (style,) = self._run(CAMPPLUS_GRAPH, {"fbank": campplus_features(wav_16k)})
        return style

    def prompt_condition(self, s_ref: np.ndarray, mel_frames: int) -> np.ndarray:
        index = nearest_frame_index(s_ref.shape[1], mel_frames)
        (condition,) = self._run(PROMPT_REGULATOR_GRAPH, {"s_ref": s_ref, "frame_index": index})
        return condition

    def prepare(self, wav_16k: np.ndarray, wav_22k: np.ndarray) -> AcousticPrompt:
        """Condition a voice from the same clip at 16 kHz and 22050 Hz (float, mono)."""
        spk_cond_emb = self.semantic_embedding(wav_16k)
        _, s_ref = self.quantize(spk_cond_emb)
        ref_mel = reference_mel(wav_22k, self._mel)
        return AcousticPrompt(
            spk_cond_emb=spk_cond_emb,
            style=self.style(wav_16k),
            prompt_condition=self.prompt_condition(s_ref, ref_mel.shape[2]),
            ref_mel=ref_mel,
        )

    def close(self) -> None:
        """Forget the session factory so the sessions (and their memory) can be released."""
        self._closed = True
        self._session_for = _closed_sessions


def _closed_sessions(name: str) -> Any:
    raise RuntimeError("AcousticConditioner is closed")
