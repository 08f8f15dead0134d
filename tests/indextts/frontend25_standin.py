"""Stand-in for the IndexTTS-2.5 text frontend (its torch-free port is separate work): the
official `indextts25` tokenizer on the model folder's own .tiktoken file, lower-cased text
(what infer_v2_5 does for en/zh with normalisation off), one segment, one fixed language."""

from __future__ import annotations

from pathlib import Path

from wyoming_indextts.engines.indextts.pipeline25 import LanguageIds


class OfficialTokenizer25:
    def __init__(self, model_dir: Path, language: str) -> None:
        from indextts25.utils.tokenizer import get_encoding

        vocabulary = next(Path(model_dir).glob("*.tiktoken"))
        self.encoding = get_encoding(vocabulary.stem, model_dir=str(vocabulary.parent))
        self.language = language

    def segment_ids(self, text: str, max_tokens: int) -> list[list[int]]:
        ids = self.encoding.encode(f"<|{self.language}|> " + text.lower(), allowed_special="all")
        return [LanguageIds(ids, self.language)]
