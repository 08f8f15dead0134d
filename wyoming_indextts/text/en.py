"""English: where WeTextProcessing (wetext 0.1.8) reads wrong, rewritten around it.

Each rewrite hands wetext a form it reads right; none reads a number itself. Each is shown by
a test in tests/test_text_normalize.py.
"""

from __future__ import annotations

import re

# "$5.99" was "five point nine nine dollars" and "$0.50" "zero point five dollars": dollars
# and cents, written out in words wetext reads as plain numbers.
DOLLARS_AND_CENTS = re.compile(r"(?<![0-9A-Za-z])\$([0-9]{1,3}(?:,[0-9]{3})*|[0-9]+)\.([0-9]{2})(?![0-9])(?!\s*(?:thousand|million|billion|trillion)\b)")
# "1,000 people" was "thousand people", "1,500" "thousand five hundred": the grammar drops
# the "one" of a thousand written with a separator (2,000 and up, and millions, read right).
ONE_THOUSAND = re.compile(r"(?<![0-9,.])1,([0-9]{3})(?![0-9]|,[0-9])")
# "the 1990s" was "one thousand nine hundred and ninety seconds"; "1990's" reads as the year.
DECADE = re.compile(r"(?<![0-9])([12][0-9]{2}0)s\b")
# ...and its "ninety's" becomes "nineties" (only tens words: "the party's" stays).
DECADE_SPOKEN = re.compile(r"\b(twen|thir|for|fif|six|seven|eigh|nine)ty's\b")


def _dollars(match: re.Match[str]) -> str:
    dollars, cents = match.group(1).replace(",", ""), int(match.group(2))
    cent_words = f"{cents} cent" + ("s" if cents != 1 else "")
    if int(dollars) == 0:
        return cent_words
    dollar_words = f"{dollars} dollar" + ("s" if int(dollars) != 1 else "")
    return dollar_words if cents == 0 else f"{dollar_words} {cent_words}"


def _one_thousand(match: re.Match[str]) -> str:
    rest = int(match.group(1))
    return "1 thousand" + (f" {rest}" if rest else "")


def before(text: str) -> str:
    text = DOLLARS_AND_CENTS.sub(_dollars, text)
    text = ONE_THOUSAND.sub(_one_thousand, text)
    return DECADE.sub(r"\1's", text)


def after(text: str) -> str:
    return DECADE_SPOKEN.sub(r"\1ties", text)
