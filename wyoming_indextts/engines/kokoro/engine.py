"""The bundled Mandarin voices: Kokoro-82M v1.0 (int8 ONNX), offline, on one ONNX Runtime
session shared by all eight voices (a voice is only a style table).

Model inputs: `tokens` int64 [1, n + 2] (phoneme ids, a 0 at both ends), `style` float32
[1, 256] (the voice's row for n phonemes), `speed` float32 [1]; output: 24 kHz float audio.
One call takes at most 510 phonemes, so longer sentences are cut at clause ends (then at
spaces). The opening sentence of a response renders its first clause alone, so the listener
hears it while the rest renders. Each call's audio comes padded with about 0.3 s of silence
before the voice and 0.65 s after it; a sentence's pieces are trimmed so that the listener
hears a clause's pause at a join, not a one-second gap.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from importlib.metadata import version

import numpy as np
import onnxruntime

from ...audio import float_to_pcm
from ..base import KOKORO, EngineError, Voice, speed_of
from ..sessions import session_options as default_session_options
from ..sessions import shrinking_run
from .files import STYLE_ROWS, VOICE_SHA256, KokoroModel, load_model, load_style
from .g2p import MandarinG2P

SAMPLE_RATE = 24000
VOICE_PREFIX = "kokoro-"
DEFAULT_MANDARIN_VOICE = "zf_xiaoxiao"
RENDER_VERSION = "3"
"""Part of every voice fingerprint: bump it when rendering changes, so the cache renews."""

MAX_PHONEMES = STYLE_ROWS
FIRST_CLAUSE_MIN = 12
"""An opening clause shorter than this many phonemes is not worth a call of its own."""
CLAUSE_END = re.compile(r"(?<=[,.!?;:—…]) ")
_SHRINK_ARENA = shrinking_run()
"""Every call gives its arena memory back: the decoder's activations scale with the audio,
and an arena kept after four sentences of up to 60 characters held 1.1 GB of malloc's
mmapped memory (RSS 476 MB → 1.1 GB) and kept it while idle; the soak (benchmarks/soak.py)
saw it as the server's memory growing for minutes."""
SILENCE_LEVEL = 10 ** (-60 / 20)
"""A sample quieter than -60 dBFS is Kokoro's padding, not voice."""
LEAD_KEPT = 0.02
"""Seconds of padding kept before a piece's voice, so a soft onset is not cut."""
JOIN_KEPT = 0.08
"""Seconds of padding kept after a piece that the same sentence goes on from: with LEAD_KEPT a
join's silence stays under 150 ms, a clause's pause, where the padding alone made about 1 s."""


def split_phonemes(phonemes: str, opening: bool) -> list[str]:
    """Pieces of at most MAX_PHONEMES, cut at clause ends where possible, else at spaces,
    else anywhere; clauses are merged back up to the limit so prosody spans them."""
    parts: list[str] = []
    for clause in CLAUSE_END.split(phonemes):
        while len(clause) > MAX_PHONEMES:
            cut = clause.rfind(" ", 0, MAX_PHONEMES + 1)
            cut = cut if cut > 0 else MAX_PHONEMES
            parts.append(clause[:cut].strip())
            clause = clause[cut:].strip()
        if clause:
            parts.append(clause)
    pieces: list[str] = []
    for part in parts:
        alone = opening and len(pieces) == 1 and len(pieces[0]) >= FIRST_CLAUSE_MIN
        if pieces and not alone and len(pieces[-1]) + 1 + len(part) <= MAX_PHONEMES:
            pieces[-1] = f"{pieces[-1]} {part}"
        else:
            pieces.append(part)
    return pieces


def trim_padding(audio: np.ndarray, *, more_follows: bool) -> np.ndarray:
    """`audio` with its leading padding cut to LEAD_KEPT, and its trailing padding to JOIN_KEPT
    when another piece of the sentence follows (the sentence's end keeps its pause)."""
    voiced = np.flatnonzero(np.abs(audio) > SILENCE_LEVEL)
    if voiced.size == 0:
        return audio
    start = max(0, int(voiced[0]) - round(LEAD_KEPT * SAMPLE_RATE))
    end = min(len(audio), int(voiced[-1]) + 1 + round(JOIN_KEPT * SAMPLE_RATE)) if more_follows else len(audio)
    return audio[start:end]


class KokoroEngine:
    name = KOKORO

    def __init__(self, session: onnxruntime.InferenceSession, model: KokoroModel, styles: dict[str, np.ndarray], g2p: MandarinG2P) -> None:
        self._session = session
        self._vocab = model.vocab
        self._styles = styles
        self._g2p = g2p
        versions = "|".join(f"{package}={version(package)}" for package in ("misaki", "wetext", "jieba", "pypinyin", "piper-tts"))
        self._voices: dict[str, Voice] = {}
        for short, style_hash in VOICE_SHA256.items():
            fingerprint = hashlib.sha256("|".join([model.sha256, style_hash, versions, RENDER_VERSION]).encode()).hexdigest()
            gender = "female" if short.startswith("zf_") else "male"
            self._voices[VOICE_PREFIX + short] = Voice(
                name=VOICE_PREFIX + short,
                engine=self.name,
                sample_rate=SAMPLE_RATE,
                languages=("zh",),
                description=f"Kokoro {short.split('_')[1].capitalize()} ({short}): {gender} Mandarin voice, bundled and offline; reads English words too",
                version="1.0",
                attribution_name="hexgrad (Kokoro-82M)",
                attribution_url="https://huggingface.co/hexgrad/Kokoro-82M",
                fingerprint=fingerprint,
                extra={"style": short},
            )

    @classmethod
    def load(cls, session_options: onnxruntime.SessionOptions | None = None) -> "KokoroEngine":
        """Checks every file (EngineError naming the one at fault), then builds the session."""
        model = load_model()
        styles = {short: load_style(short) for short in VOICE_SHA256}
        session = onnxruntime.InferenceSession(
            model.onnx, sess_options=session_options or default_session_options(), providers=["CPUExecutionProvider"]
        )
        return cls(session, model, styles, MandarinG2P(model.vocab))

    def voices(self) -> Sequence[Voice]:
        return list(self._voices.values())

    def voice_for_language(self, language: str) -> Voice | None:
        return self._voices[VOICE_PREFIX + DEFAULT_MANDARIN_VOICE] if language == "zh" else None

    def normalise(self, text: str) -> str:
        """The text as it will be read: numbers, dates, times and units written out."""
        return self._g2p.normalise(text)

    def phonemes(self, text: str) -> str:
        return self._g2p.phonemes(text)

    def synthesize(self, text: str, voice: Voice, *, opening: bool = True) -> Iterator[bytes]:
        style = self._styles.get(voice.extra.get("style", ""))
        if style is None:
            raise EngineError(f"Kokoro has no voice named {voice.name!r}")
        speed = speed_of(voice)
        pieces = split_phonemes(self.phonemes(text), opening)
        for index, piece in enumerate(pieces):
            yield float_to_pcm(trim_padding(self._render(piece, style, speed), more_follows=index < len(pieces) - 1))

    def _render(self, phonemes: str, style: np.ndarray, speed: float) -> np.ndarray:
        ids = [self._vocab[c] for c in phonemes]
        feeds = {
            "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": style[len(ids) - 1 : len(ids)],
            "speed": np.full(1, speed, dtype=np.float32),
        }
        return self._session.run(None, feeds, _SHRINK_ARENA)[0].reshape(-1)

    def close(self) -> None:
        self._styles.clear()
