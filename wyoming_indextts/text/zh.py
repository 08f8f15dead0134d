"""Chinese: where WeTextProcessing (wetext 0.1.8) reads wrong, rewritten around it.

Each rewrite hands wetext a form it reads right, or mends a word in its output; none reads a
number itself. Each is shown by a test in tests/test_text_normalize.py.
"""

from __future__ import annotations

import re

# "1,234,567" fell apart into 一,两百三十四,...: the grammar knows no thousands separator.
THOUSANDS_SEPARATOR = re.compile(r"(?<=[0-9]),(?=[0-9]{3}(?![0-9]))")
# "2点" (two o'clock) was 二点; the clock says 两点.
TWO_OCLOCK = re.compile(r"(?<![0-9.])2(?=点(?![0-9]))")
# "第2个" (the second) was 第两个: 两 is a count, never an ordinal.
ORDINAL_TWO = re.compile("第两")


def before(text: str) -> str:
    return TWO_OCLOCK.sub("两", THOUSANDS_SEPARATOR.sub("", text))


def after(text: str) -> str:
    return ORDINAL_TWO.sub("第二", text)
