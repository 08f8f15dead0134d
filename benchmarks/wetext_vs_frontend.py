"""How WeTextProcessing's readings (`wetext`) compare with the hand-written normaliser the
IndexTTS frontend had before issue 11, and what the frontend reads now (wetext inside the
official wrapping, with the fixes of `wyoming_indextts.text`).

Corpus: tests/data/normalizer_readings.json, the 107 reading cases of the old normaliser's
tests with its readings frozen before it was deleted. The report lists each case where any
of the three readings differ, with the verdict the corpus test holds it to.

    python benchmarks/wetext_vs_frontend.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _report import command_line, timestamp, write_section  # noqa: E402

from wyoming_indextts.engines.indextts.text import normalize  # noqa: E402

SECTION = "wetext_vs_frontend"
CORPUS = REPO / "tests" / "data" / "normalizer_readings.json"


def main() -> int:
    from wetext import Normalizer

    plain = {
        "zh": Normalizer(lang="zh", operator="tn", traditional_to_simple=True, full_to_half=True),
        "en": Normalizer(lang="en", operator="tn"),
    }
    cases = json.loads(CORPUS.read_text(encoding="utf-8"))
    rows = []
    for case in cases:
        try:
            theirs = plain[case["lang"]].normalize(case["text"])
        except Exception as err:  # noqa: BLE001 - a raising grammar is a finding too
            theirs = f"raises {type(err).__name__}"
        now = normalize(case["text"])
        if len({case["old"], theirs, now}) > 1:
            rows.append((case["lang"], case["text"], case["old"], theirs, now, case["verdict"]))
    plain_same = sum(1 for case in cases if case["old"] == case["wetext"])
    now_same = sum(1 for case in cases if case["old"] == normalize(case["text"]))
    lines = [
        "## wetext 0.1.8 vs the IndexTTS frontend's old hand-written normaliser",
        "",
        f"Run {timestamp()}. Corpus: the {len(cases)} reading cases of the old normaliser "
        f"(tests/data/normalizer_readings.json, its readings frozen before it was deleted). Plain wetext "
        f"reads **{plain_same}** as the old code did; the frontend now (wetext inside the official wrapping, "
        f"with our fixes) **{now_same}**. Every other case is accepted (WeTextProcessing's reading taken) "
        "or fixed (a rewrite around wetext, with a test): below, `old` is the hand-written reading.",
        "",
        "| lang | text | old | plain wetext | now | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [c.replace("|", "\\|") for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "```", command_line(), "```"]
    section = "\n".join(lines)
    write_section(SECTION, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
