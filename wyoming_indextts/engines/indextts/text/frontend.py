"""IndexTTS-2 text frontend without torch: normalise, tokenize, segment.

The official frontend (`indextts/utils/front.py` in indextts2-inference 2.1.1) normalises
(see `official.py`: its wrapping around the normaliser, ours around WeTextProcessing), then
`tokenize_by_CJK_char` (CJK characters split apart, everything upper-cased) and a
sentencepiece BPE model, then `split_segments` to cut long texts into GPT-sized pieces.
Kept from the official code, exactly: tokenization, including its quirk that a text of one
non-blank character is encoded raw (not normalised, not upper-cased), and the segmenter.
`TextFrontend.tokenize`/`encode` refuse text with nothing speakable (NoSpeakableTextError)
where the official code would feed punctuation-only tokens to the GPT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sentencepiece import SentencePieceProcessor

from ....sentences import has_speakable
from .official import normalize, tokenize_by_cjk_char
from .segments import split_segments


class NoSpeakableTextError(ValueError):
    """The text has nothing a voice could say (only punctuation, symbols, emoji or spaces)."""


@dataclass(frozen=True)
class TextFrontend:
    """Normaliser + BPE tokenizer + segmenter for one IndexTTS2 model folder's `bpe.model`.

    Safe to share between worker threads: nothing changes after `load`, and sentencepiece
    encoding does not mutate the processor."""

    sp: SentencePieceProcessor
    language: str | None = None
    """Force ``"zh"`` or ``"en"`` normalisation; None lets the official rule decide per text."""
    glossary: dict[str, str | dict[str, str]] = field(default_factory=dict)
    """Term -> reading, or term -> {"zh": ..., "en": ...}, as the official glossary.yaml."""

    @classmethod
    def load(
        cls, bpe_model_path: Path, glossary_path: Path | None = None, language: str | None = None
    ) -> TextFrontend:
        bpe_model_path = Path(bpe_model_path)
        if not bpe_model_path.is_file():
            raise FileNotFoundError(f"BPE model not found: {bpe_model_path} (expected bpe.model in the model folder)")
        sp = SentencePieceProcessor(model_file=str(bpe_model_path))
        glossary: dict[str, str | dict[str, str]] = {}
        if glossary_path is not None and Path(glossary_path).is_file():
            import yaml  # only needed when a model folder ships a glossary

            loaded = yaml.safe_load(Path(glossary_path).read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                glossary = {str(k): v for k, v in loaded.items()}
        return cls(sp=sp, language=language, glossary=glossary)

    @property
    def unk_id(self) -> int:
        return self.sp.unk_id()

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def normalize(self, text: str) -> str:
        return normalize(text, language=self.language, glossary=self.glossary)

    def tokenize(self, text: str) -> list[str]:
        """BPE pieces exactly as the official `TextTokenizer.tokenize` with this normaliser.

        Raises NoSpeakableTextError when nothing in the text can be spoken.
        """
        if len(text.strip()) == 1:
            # Official quirk: one visible character is encoded as is, unnormalised.
            self._require_speakable(text, text)
            return self.sp.encode(text, out_type=str)
        normalized = self.normalize(text)
        self._require_speakable(text, normalized)
        return self.sp.encode(tokenize_by_cjk_char(normalized), out_type=str)

    def encode(self, text: str) -> list[int]:
        """Token ids, as the official `TextTokenizer.encode`."""
        return self.tokens_to_ids(self.tokenize(text))

    def tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.sp.piece_to_id(token) for token in tokens]

    def split_segments(
        self, tokens: Sequence[str], max_text_tokens_per_segment: int = 120, quick_streaming_tokens: int = 0
    ) -> list[list[str]]:
        return split_segments(tokens, max_text_tokens_per_segment, quick_streaming_tokens)

    def segment_ids(
        self, text: str, max_text_tokens_per_segment: int = 120, quick_streaming_tokens: int = 0
    ) -> list[list[int]]:
        """Text -> the GPT inputs the official `infer` feeds, one id list per segment."""
        segments = self.split_segments(self.tokenize(text), max_text_tokens_per_segment, quick_streaming_tokens)
        return [self.tokens_to_ids(segment) for segment in segments]

    @staticmethod
    def _require_speakable(original: str, normalized: str) -> None:
        if not has_speakable(normalized):
            shown = original if len(original) <= 40 else original[:37] + "..."
            raise NoSpeakableTextError(
                f"Nothing to speak in {shown!r}: it has only punctuation, symbols, emoji or spaces. "
                "Send text with at least one letter or digit."
            )
