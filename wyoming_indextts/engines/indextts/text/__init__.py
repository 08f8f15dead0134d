"""IndexTTS text: the official frontend's steps around WeTextProcessing, tokenizers, segmenting.

- `official`: what the official frontend does around its normaliser (zh/en decision,
  glossary, pinyin, tech terms, names, punctuation map);
- `segments`: the official IndexTTS-2 segmenter;
- `frontend`: the IndexTTS-2 frontend (sentencepiece BPE);
- `tokenizer25` and `frontend25`: the IndexTTS-2.5 tokenizer (tiktoken, language tokens)
  and text preparation.
Numbers, dates and units are written out by `wyoming_indextts.text.normalize` (wetext).
"""

from .frontend import NoSpeakableTextError, TextFrontend
from .frontend25 import TextFrontend25
from .official import CHAR_REP_MAP, ZH_CHAR_REP_MAP, normalize
from .segments import split_segments
from .tokenizer25 import Tokenizer25, language_id

__all__ = [
    "CHAR_REP_MAP",
    "ZH_CHAR_REP_MAP",
    "NoSpeakableTextError",
    "TextFrontend",
    "TextFrontend25",
    "Tokenizer25",
    "language_id",
    "normalize",
    "split_segments",
]
