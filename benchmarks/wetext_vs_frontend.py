"""How WeTextProcessing's readings (`wetext`) compare with the IndexTTS frontend's own
normaliser, on the frontend's reading corpus (tests/indextts/test_text.py ZH_CASES and
EN_CASES): the groundwork for replacing the hand-written rules with wetext (issue 11).

Every case is normalised both ways; the report lists each difference, so each can be
accepted or kept (with a rule around wetext and a test) when the switch is made.

    python benchmarks/wetext_vs_frontend.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _report import command_line, timestamp, write_section  # noqa: E402

from wyoming_indextts.engines.indextts.text import normalize  # noqa: E402

SECTION = "wetext_vs_frontend"
CORPUS = REPO / "tests" / "indextts" / "test_text.py"


def corpus() -> dict[str, list[tuple[str, str]]]:
    """The reading tables, read from the test module's source (importing it needs the
    official IndexTTS package)."""
    tree = ast.parse(CORPUS.read_text(encoding="utf-8"))
    tables = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id in ("ZH_CASES", "EN_CASES"):
            tables[node.targets[0].id[:2].lower()] = ast.literal_eval(node.value)
    return tables


def main() -> int:
    from wetext import Normalizer

    normalisers = {"zh": Normalizer(lang="zh", operator="tn"), "en": Normalizer(lang="en", operator="tn")}
    rows = []
    total = 0
    for language, cases in corpus().items():
        for text, _expected in cases:
            total += 1
            ours = normalize(text, language=language)
            try:
                theirs = normalisers[language].normalize(text)
            except Exception as err:  # noqa: BLE001 - a raising grammar is a finding too
                theirs = f"raises {type(err).__name__}: {err}"
            if ours != theirs:
                rows.append((language, text, ours, theirs))
    lines = [
        "## wetext 0.1.8 vs the IndexTTS frontend's hand-written normaliser",
        "",
        f"Run {timestamp()}. Corpus: the {total} reading cases of tests/indextts/test_text.py "
        f"(ZH_CASES, EN_CASES), each normalised in its own language. **{total - len(rows)} read the same, "
        f"{len(rows)} differ** (below; `ours` is what the frontend says now). Plain wetext, no rules around it.",
        "",
        "| lang | text | ours | wetext |",
        "|---|---|---|---|",
    ]
    for language, text, ours, theirs in rows:
        cells = [c.replace("|", "\\|") for c in (text, ours, theirs)]
        lines.append(f"| {language} | {cells[0]} | {cells[1]} | {cells[2]} |")
    lines += ["", "```", command_line(), "```"]
    section = "\n".join(lines)
    write_section(SECTION, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
