"""Plant realistic porting bugs, one at a time, and check that the parity tests catch each.

    .venv/bin/python benchmarks/plant_bugs.py              # every bug, then RESULTS.md
    .venv/bin/python benchmarks/plant_bugs.py --only cfg-dropped top-p-before-top-k

Each bug is a one-line edit of the runtime (wyoming_indextts/engines/indextts/) or the
exporter (wyoming_indextts/export/), applied to a scratch copy of the package and the tests
(benchmarks/.work/plant/), never to the checkout. The parity tests then run on that copy
(`pytest -x`, so a caught bug stops at its first failure; the failing test is recorded). The
tiny official files are built once and shared by every run; the exported model folder is
shared only by runtime bugs (an exporter bug must go through its own export). The unchanged
copy runs too: it must pass, or the table would mean nothing.

The next port (IndexTTS-2.5) should add its own bugs to BUGS and be held to the same net.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import LoadMonitor, machine_description, timestamp, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "plant"
GPT_TESTS = "tests/indextts/test_gpt_parity.py"
ACOUSTIC_TESTS = "tests/indextts/test_acoustic_parity.py"
PARITY_TESTS = (
    GPT_TESTS,
    ACOUSTIC_TESTS,
    "tests/indextts/test_engine_parity.py",
    "tests/indextts/test_infer_parity.py",
)
RUNTIME = "wyoming_indextts/engines/indextts/"
EXPORT = "wyoming_indextts/export/"


@dataclass(frozen=True)
class Bug:
    name: str
    what: str
    file: str
    old: str
    new: str

    @property
    def in_exporter(self) -> bool:
        return self.file.startswith(EXPORT)

    @property
    def test_order(self) -> list[str]:
        """Every parity file; the one closest to the edited stage first, so that with -x a
        caught bug costs one file's time (a missed one still runs them all)."""
        first = GPT_TESTS if self.file.endswith(("gpt.py", "sampling.py")) else ACOUSTIC_TESTS
        return [first, *(t for t in PARITY_TESTS if t != first)]


BUGS = (
    # exporter bugs first: each needs its own export, the longest part of a run
    Bug("final-norm-dropped", "UnifiedVoice's final_norm dropped after GPT-2's ln_f",
        EXPORT + "gpt.py", "hidden = self.final_norm(self.ln_f(hidden))", "hidden = self.ln_f(hidden)"),
    Bug("ln1-ln2-swapped", "each block's ln_1 and ln_2 swapped",
        EXPORT + "gpt.py", "self._attention(block, block.ln_1(hidden)", "self._attention(block, block.ln_2(hidden)"),
    Bug("mel-head-bias-dropped", "mel_head's bias dropped",
        EXPORT + "gpt.py", "self.mel_head.weight.t())[:, 0, :] + self.mel_head.bias", "self.mel_head.weight.t())[:, 0, :]"),
    Bug("uvit-skip-order", "U-ViT skip connections paired first-in first-out",
        EXPORT + "acoustic.py", "skip_in = skips.pop(-1) if i in self.receive_skip else None",
        "skip_in = skips.pop(0) if i in self.receive_skip else None"),
    Bug("cfg-dropped", "CFG dropped: only the conditional velocity is used",
        RUNTIME + "s2mel.py", "dphi = (np.float32(1.0) + cfg) * velocity[:1] - cfg * velocity[1:]",
        "dphi = velocity[:1]"),
    Bug("cfg-uncond-keeps-prompt", "the unconditional CFG row keeps the prompt mel",
        RUNTIME + "s2mel.py", "prompt_x[0, :, :prompt_len] = ref_mel[0, :, :prompt_len]",
        "prompt_x[:, :, :prompt_len] = ref_mel[0, :, :prompt_len]"),
    Bug("top-p-before-top-k", "top-p applied before top-k",
        RUNTIME + "sampling.py",
        "        scores = apply_top_k(scores, opts.top_k)\n        scores = apply_top_p(scores, opts.top_p)",
        "        scores = apply_top_p(scores, opts.top_p)\n        scores = apply_top_k(scores, opts.top_k)"),
    Bug("temperature-multiplies", "a factor: logits multiplied by the temperature",
        RUNTIME + "sampling.py", "return logits / np.float32(temperature)", "return logits * np.float32(temperature)"),
    Bug("speed-rows-swapped", "embedding rows: the two speed rows in the other order",
        RUNTIME + "gpt.py", "duration_half = np.broadcast_to(self.speed_embedding[1]",
        "duration_half = np.broadcast_to(self.speed_embedding[0]"),
    Bug("decode-position", "mel position k instead of the official k + 1 while decoding",
        RUNTIME + "gpt.py", "position = (mel_len + 1 + len(codes)) - mel_len", "position = len(codes)"),
    Bug("emovec-merge-reversed", "merge_emovec from the emotion side: emo + alpha (base - emo)",
        RUNTIME + "gpt.py", "return base + np.float32(alpha) * (emo - base)", "return emo + np.float32(alpha) * (base - emo)"),
    Bug("emotion-row-argmin", "emotion matrix row: least similar speaker row instead of most",
        RUNTIME + "gpt.py", "return int(np.argmax(similarities))", "return int(np.argmin(similarities))"),
)  # fmt: skip


@dataclass
class Outcome:
    bug: Bug | None
    caught_by: str | None
    seconds: float
    log: Path


def scratch_copy(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "wyoming_indextts", dest / "wyoming_indextts", ignore=ignore)
    shutil.copytree(ROOT / "tests", dest / "tests", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


def plant(dest: Path, bug: Bug) -> None:
    path = dest / bug.file
    text = path.read_text(encoding="utf-8")
    count = text.count(bug.old)
    if count != 1:
        raise SystemExit(f"{bug.name}: the line to change occurs {count} times in {bug.file}; update BUGS")
    path.write_text(text.replace(bug.old, bug.new), encoding="utf-8")


def run_tests(dest: Path, tests: list[str], env: dict[str, str], log: Path) -> tuple[str | None, float]:
    """Runs the parity tests in `dest`; returns (first failing test or None, seconds)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *tests, "-x", "-q", "-p", "no:cacheprovider", "-rf"],
        cwd=dest, env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    log.write_text(result.stdout + result.stderr, encoding="utf-8")
    if result.returncode == 0:
        return None, seconds
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, flags=re.MULTILINE)
    return (failed[0] if failed else f"pytest exit {result.returncode}"), seconds


def run_one(bug: Bug | None, env: dict[str, str], model: Path) -> Outcome:
    """The unchanged copy (bug None) or one planted bug, in its own scratch folder."""
    name = bug.name if bug else "unchanged"
    dest = WORK / "runs" / name
    scratch_copy(dest)
    if bug:
        plant(dest, bug)
    shares_export = bug is None or not bug.in_exporter
    run_env = {**env, "WYOMING_INDEXTTS_TINY_MODEL": str(model)} if shares_export else env
    log = WORK / f"{name}.log"
    caught, seconds = run_tests(dest, bug.test_order if bug else list(PARITY_TESTS), run_env, log)
    shutil.rmtree(dest)
    verdict = ("FAILED: " if bug is None else "caught by ") + caught if caught else ("passes" if bug is None else "MISSED")
    print(f"{name:28s} {verdict} ({seconds:.0f} s)", flush=True)
    return Outcome(bug, caught, seconds, log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="BUG", help="plant only these bugs (no RESULTS.md)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at the same time (default 1)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the tiny files and the unchanged export of the last run"
    )
    args = parser.parse_args(argv)
    bugs = [b for b in BUGS if not args.only or b.name in args.only]
    if args.only and len(bugs) != len(args.only):
        parser.error(f"unknown bug; known: {', '.join(b.name for b in BUGS)}")

    model = WORK / "model"
    reuse = args.reuse and (model / "manifest.json").is_file() and (WORK / "tiny" / "complete").is_file()
    if not reuse and WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "tiny").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WYOMING_INDEXTTS_TINY_CACHE": str(WORK / "tiny")}
    started = time.perf_counter()
    with LoadMonitor() as load:
        if not reuse:  # the tiny official files and the unchanged export, shared as said above
            clean = WORK / "runs" / "export"
            scratch_copy(clean)
            export = subprocess.run(
                [sys.executable, "-c", EXPORT_SNIPPET, str(model)], cwd=clean, env=env, capture_output=True, text=True
            )
            if export.returncode != 0:
                raise SystemExit(f"export of the unchanged tiny model failed:\n{export.stderr[-2000:]}")
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(pool.map(lambda bug: run_one(bug, env, model), [None, *bugs]))
    elapsed = time.perf_counter() - started
    if outcomes[0].caught_by:
        raise SystemExit(f"the parity tests fail without any bug (see {outcomes[0].log}): the table would mean nothing")
    missed = [o.bug.name for o in outcomes if o.bug and not o.caught_by]
    if not args.only:
        write_section("plant_bugs", report(outcomes, load, args.jobs, elapsed))
    print("every planted bug was caught" if not missed else f"MISSED: {', '.join(missed)}")
    return 1 if missed else 0


EXPORT_SNIPPET = """
import os
import sys
from pathlib import Path
from tests.indextts.conftest import TinyCheckpoints
from tests.indextts.tiny_acoustic import build_tiny_acoustic, tiny_acoustic_sources
from tests.indextts.tiny_gpt import write_tiny_gpt_checkpoints
root = Path(os.environ["WYOMING_INDEXTTS_TINY_CACHE"])
checkpoints = root / "IndexTTS-2"
if not (root / "complete").exists():
    write_tiny_gpt_checkpoints(checkpoints)
    build_tiny_acoustic(checkpoints)
    (root / "complete").touch()
s = tiny_acoustic_sources(checkpoints)
tiny = TinyCheckpoints(checkpoints, s.w2v_bert_dir, s.semantic_codec, s.campplus, s.bigvgan_dir)
from wyoming_indextts.export.cli import main
sys.exit(main(tiny.export_args(Path(sys.argv[1]))))
"""


def report(outcomes: list[Outcome], load: LoadMonitor, jobs: int, elapsed: float) -> str:
    rows = [
        f"| `{o.bug.name}` | {'exporter' if o.bug.in_exporter else 'runtime'} | {o.bug.what} | "
        f"{'`' + o.caught_by + '`' if o.caught_by else '**missed**'} | {o.seconds:.0f} |"
        for o in outcomes
        if o.bug
    ]
    clean = outcomes[0]
    caught = sum(1 for o in outcomes if o.bug and o.caught_by)
    total = sum(1 for o in outcomes if o.bug)
    return "\n".join(
        [
            "## Planted bugs: does the parity suite catch a wrong port?",
            "",
            f"{caught} of {total} planted bugs caught. Each bug is one edit of the runtime or the exporter, "
            "planted alone in a scratch copy; the parity tests then run with `-x` (the first failing test is "
            f"listed). The unchanged copy passes them ({clean.seconds:.0f} s).",
            "",
            "| bug | where | what | caught by (first failing test) | seconds |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"Tests: {', '.join(PARITY_TESTS)}. Whole run: {elapsed / 60:.0f} min with {jobs} run(s) at a time.",
            "",
            f"Machine: {machine_description()}; load average {min(load.samples):.1f}-{max(load.samples):.1f}"
            f"{' (**busy machine**: seconds inflated)' if load.busy() else ''}. "
            f"Date: {timestamp()}.",
            "",
            f"Command: `.venv/bin/python benchmarks/plant_bugs.py --jobs {jobs}`",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
