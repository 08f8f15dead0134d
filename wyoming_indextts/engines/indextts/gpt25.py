"""GPT stage of IndexTTS-2.5 on ONNX Runtime: the 2.0 core (``gpt.onnx``) with 2.5's inputs.

What ``indextts25``'s ``UnifiedVoice.inference_speech`` does around the GPT-2 core, in numpy
(the tables are written by ``export/gpt25.py``):

* conditioning prefix ``[spk_emb_proj(style) + emovec, 0, 0]`` (1, 3, D): the speaker is the
  CAMPPlus style through one linear layer (2.0 ran a conformer + perceiver over w2v-BERT
  features into 32 latents and appended two speed rows);
* text: only stop ids are dropped (id 0 is the start id *and* "!" in the tiktoken vocabulary,
  so 2.5 keeps it), then ``[start_text] ids [stop_text]``, each position embedded as
  text + text position + ``lang_embedding[language id]``;
* the start-mel token at mel position 0 and the k-th generated code (k = 0, 1, ...) at mel
  position k + 1 (2.0 skipped a position: k + 2).

Codes come at 25 Hz; ``codec.SemanticDecoder`` turns them into 50 Hz features for s2mel.
There are no GPT latents in 2.5: s2mel reads the decoded codes alone.

Text arrives as `LanguageIds` (ids + language), so `start` can prefill 2.5's prompt from the
same call 2.0's takes: plain, speculative (``speculative.py``) and batched (``batched.py``)
decoding run on this runtime unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .gpt import GPTConfig, GPTRuntime

PREFIX_ZERO_ROWS = 2
"""inference_speech appends two zero rows after the speaker + emotion row."""


class UnknownLanguage(ValueError):
    pass


class GPT25Runtime(GPTRuntime):
    """The 2.0 GPT runtime with 2.5's prefix, language embedding and mel positions."""

    def __init__(
        self, session: Any, arrays: Mapping[str, np.ndarray], config: GPTConfig, languages: Mapping[str, int]
    ) -> None:
        super().__init__(session, arrays, config)
        self.lang_embedding = np.asarray(arrays["lang_embedding"], dtype=np.float32)
        self.languages = {str(k): int(v) for k, v in languages.items()}

    def language_id(self, language: str) -> int:
        """``lang_to_token``: the row of the language table; unknown codes are refused here
        (the official code maps them to "common", which would speak the text wrongly)."""
        key = language.lower()
        if key not in self.languages:
            raise UnknownLanguage(f"IndexTTS-2.5 has no language {language!r}")
        return self.languages[key]

    def conditioning_prefix(self, speaker_latents: np.ndarray, emovec: np.ndarray) -> np.ndarray:
        """Speaker row (1, 1, D) + emotion vector (1, D) → the (1, 3, D) prefix."""
        row = np.asarray(speaker_latents, dtype=np.float32)[0] + np.asarray(emovec, dtype=np.float32).reshape(1, -1)
        zeros = np.zeros((PREFIX_ZERO_ROWS, row.shape[-1]), dtype=np.float32)
        return np.concatenate([row, zeros], axis=0)[None]

    def prompt_text_ids(self, text_ids: Sequence[int]) -> np.ndarray:
        """prepare_gpt_inputs of 2.5: drop stop ids only, then wrap in start/stop."""
        cfg = self.config
        ids = np.asarray(text_ids, dtype=np.int64).reshape(-1)
        ids = ids[ids != cfg.stop_text_token]
        return np.concatenate([[cfg.start_text_token], ids, [cfg.stop_text_token]]).astype(np.int64)

    def prompt_embeddings25(self, prefix: np.ndarray, text_ids: Sequence[int], language_id: int) -> np.ndarray:
        text = self._text_embeddings(self.prompt_text_ids(text_ids)) + self.lang_embedding[language_id]
        return np.concatenate([prefix, text[None]], axis=1).astype(np.float32)

    def code_embeddings(self, tokens: Sequence[int], first_index: int) -> np.ndarray:
        positions = np.arange(first_index, first_index + len(tokens)) + 1
        return (self.mel_embedding[np.asarray(tokens, dtype=np.int64)] + self.mel_pos_embedding[positions])[None]

    def start(self, prefix: np.ndarray, text_ids: Sequence[int]):
        """`GPTRuntime.start` for `LanguageIds`: prefill with the language they carry."""
        language = getattr(text_ids, "language", None)
        if language is None:
            raise ValueError("IndexTTS-2.5 needs the language of the text ids (LanguageIds)")
        return self.start25(prefix, text_ids, self.language_id(language))

    def start25(self, prefix: np.ndarray, text_ids: Sequence[int], language_id: int):
        """Prefill ``[prefix][text + language][start_mel]`` → (logits for the first code, past, seen ids)."""
        prompt = self.prompt_embeddings25(prefix, text_ids, language_id)
        embeds = np.concatenate([prompt, self._mel_step_embedding(self.config.start_mel_token, 0)], axis=1)
        _, logits, past = self.run_core(embeds)
        # what transformers' generate sees as input_ids: fake ids (1) + start_mel
        return logits, past, [1, self.config.start_mel_token]
