"""Written form -> spoken form, by WeTextProcessing's grammars (`wetext`, no pynini).

One entry point, `normalize(text, lang)`, for every engine that reads text aloud: the
IndexTTS frontends wrap it the way the official frontends wrap WeTextProcessing, the bundled
Mandarin voice runs it before its G2P. `zh`, `en` and `ja` have grammars; the few places
where wetext 0.1.8 reads wrong are fixed around it in the language's module, each shown by a
test (tests/test_text_normalize.py) and listed in tests/data/normalizer_readings.json.
"""

from .grammars import LANGUAGES, normalize

__all__ = ["LANGUAGES", "normalize"]
