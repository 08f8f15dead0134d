"""Peak memory of `wyoming-indextts export` at the published size (random weights), before and
after a change, in one run.

The official-looking files come from indextts_bench.py (the published architecture with
random weights, built once under benchmarks/.work/indextts/full/official). Each exporter runs
as its own process tree: the reference is the `wyoming_indextts` package of `--baseline-rev`
(extracted with `git archive` into benchmarks/.work/export_memory/), the other is this
worktree's. A sampler reads the RSS of the export process and all its descendants every
50 ms (their sum is what the machine must hold); wait4's ru_maxrss gives the largest single
process's own high-water mark (VmHWM), which sampling cannot miss. The exporter's `--debug`
step lines attribute each sample to the step that was running.

    .venv/bin/python benchmarks/export_memory.py --baseline-rev 1e2c7f6
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

WORK = ROOT / "benchmarks" / ".work" / "export_memory"
SECTION = "export_memory"
STEP = re.compile(r"export step: (.+)$|acoustic: (exporting \S+|loading .+)")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(root: int) -> float:
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _rss_kib(pid)
        todo += _children(pid)
    return total / 1024


def measure(pythonpath: Path, paths: dict[str, Path], out: Path, int8: bool) -> dict:
    """Run one export; return its peaks (whole tree, sampled; largest process, exact) and the
    peak per step."""
    command = [
        sys.executable, "-m", "wyoming_indextts", "export", "--debug", "--no-progress", "--force",
        "--checkpoints", str(paths["checkpoints"]), "--out", str(out),
        "--w2v-bert", str(paths["w2v_bert"]), "--semantic-codec", str(paths["semantic_codec"]),
        "--campplus", str(paths["campplus"]), "--bigvgan", str(paths["bigvgan"]),
        *(["--int8"] if int8 else []),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=pythonpath, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    step = ["start"]
    per_step: dict[str, float] = {}
    peak = [0.0]
    tail: list[str] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = tree_rss_mib(proc.pid)
            peak[0] = max(peak[0], rss)
            per_step[step[0]] = max(per_step.get(step[0], 0.0), rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for line in proc.stderr:
        tail = (tail + [line.rstrip()])[-20:]
        match = STEP.search(line.rstrip())
        if match:
            step[0] = match.group(1) or match.group(2)
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    if status != 0:
        raise SystemExit(f"export failed ({status}):\n" + "\n".join(tail))
    return {
        "tree_peak_mib": peak[0],
        "process_peak_mib": usage.ru_maxrss / 1024,
        "seconds": time.perf_counter() - started,
        "per_step": per_step,
    }


def baseline_tree(rev: str) -> Path:
    target = WORK / f"baseline-{rev}"
    if not (target / "wyoming_indextts").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", rev, "wyoming_indextts"], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def _target_line(peak_mib: float) -> str:
    gigabytes = peak_mib * 2**20 / 1e9
    verdict = f"yes, with {8 - gigabytes:.1f} GB left for the system" if gigabytes < 8 else "no"
    return (
        f"Target (an 8 GB machine can export): peak {gigabytes:.1f} GB: {verdict}. Part of the GPT steps' peak "
        "is the memory-mapped GPT weights (file pages the kernel can drop and read again), not counted separately here."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", required=True, help="git revision whose exporter is the reference")
    parser.add_argument("--int8", action="store_true", help="export the int8 copies too")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()

    import indextts_bench
    from _report import LoadMonitor, command_line, machine_description, timestamp, write_section

    paths = indextts_bench.build_official_files(indextts_bench.FULL_CONFIG, indextts_bench.WORK / "full" / "official", False)
    WORK.mkdir(parents=True, exist_ok=True)
    results = {}
    with LoadMonitor() as load:
        for label, tree in ((f"before ({args.baseline_rev})", baseline_tree(args.baseline_rev)), ("after (this tree)", ROOT)):
            with tempfile.TemporaryDirectory(dir=WORK) as scratch:
                results[label] = measure(tree, paths, Path(scratch) / "model", args.int8)
            print(label, {k: v for k, v in results[label].items() if k != "per_step"}, flush=True)
    steps = list(dict.fromkeys(s for r in results.values() for s in r["per_step"]))
    lines = [
        "## Export peak memory (published architecture, random weights)",
        "",
        f"{timestamp()} · {machine_description()}.",
        load.summary(),
        "",
        f"Command: `{command_line()}`. Export {'with' if args.int8 else 'without'} `--int8`. "
        "Tree peak: the largest sum of RSS over the export process and its children (sampled every 50 ms); "
        "largest process: the highest VmHWM of any one of them (exact, from wait4).",
        "",
        "| exporter | tree peak MiB | largest process MiB | export s |",
        "|---|---|---|---|",
        *(f"| {label} | {r['tree_peak_mib']:.0f} | {r['process_peak_mib']:.0f} | {r['seconds']:.0f} |" for label, r in results.items()),
        "",
        _target_line(results["after (this tree)"]["tree_peak_mib"]),
        "",
        "Peak (tree, sampled) per step:",
        "",
        "| step | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
        *(f"| {s} | " + " | ".join(f"{r['per_step'].get(s, 0):.0f}" if s in r["per_step"] else "–" for r in results.values()) + " |" for s in steps),
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_section(SECTION, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
