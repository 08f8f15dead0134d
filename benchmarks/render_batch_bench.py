"""Background renders one by one vs batched: sentences per hour of the render queue and the
pre-renders on 2 cores, through the server's own paths (`Synthesizer.render_for_cache` per
sentence, as before; `Synthesizer.render_many_for_cache`, batched GPT decoding, as now), each
into a fresh cache, and whether both give the same audio (seeded sampling: they must).

    .venv/bin/python benchmarks/render_batch_bench.py [--sentences 8] [--batch 4]

The size: the IndexTTS-2 test model of tests/indextts (random weights; GPT 1280 wide but 2
layers of the published 24, acoustic models far below the published size), built once under
benchmarks/.work/render_batch/. The published-size files (~10 GB, benchmarks/indextts_bench.py)
take longer to build than this machine had; the section also works out what the published
size's measured stage times say (a model, labelled as such, not a measurement).

Writes its section of benchmarks/RESULTS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import add_texts_argument, text_lines  # noqa: E402
from benchmarks._report import RESULTS, LoadMonitor, command_line, machine_description, timestamp, write_section  # noqa: E402

WORK = ROOT / "benchmarks" / ".work" / "render_batch"
SECTION = "render_batch"


def tiny_model() -> Path:
    """The tests' tiny official files, exported by the project's exporter (once)."""
    from tests.indextts.tiny_acoustic import build_tiny_acoustic
    from tests.indextts.tiny_gpt import write_tiny_gpt_checkpoints
    from wyoming_indextts.export.cli import main

    checkpoints, model = WORK / "official" / "IndexTTS-2", WORK / "model"
    if (model / "manifest.json").is_file():
        return model
    write_tiny_gpt_checkpoints(checkpoints)
    sources = build_tiny_acoustic(checkpoints)
    argv = [
        "--checkpoints", str(checkpoints), "--out", str(model), "--w2v-bert", str(sources.w2v_bert_dir),
        "--semantic-codec", str(sources.semantic_codec), "--campplus", str(sources.campplus),
        "--bigvgan", str(sources.bigvgan_dir), "--no-progress", "--force",
    ]  # fmt: skip
    with contextlib.redirect_stderr(io.StringIO()):
        if main(argv) != 0:
            raise SystemExit("export of the tiny model failed")
    return model


async def measure(model: Path, texts: list[str], batch: int, threads: int) -> dict:
    from tests.indextts.clips import voiced_clip, write_clip
    from wyoming_indextts.cache import AudioCache, DiskCache
    from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions
    from wyoming_indextts.engines.sessions import use_shared_thread_pool
    from wyoming_indextts.service import assemble

    use_shared_thread_pool(threads)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "voices").mkdir()
        write_clip(work / "voices" / "lena.wav", voiced_clip(5.0, 22050, seed=4), 22050)
        # Seeded sampling (the default decoding, with a seed): one by one and batched must agree.
        options = IndexTTSOptions(do_sample=True, seed=5, max_mel_tokens=200)
        engine = IndexTTSEngine.load(model, work / "voices", work / "conditioning", options)
        voice = engine.voices()[0]
        results: dict = {}
        for way in ("one by one", "batched"):
            cache = AudioCache(64 << 20, DiskCache(work / way / "cache", 256 << 20))
            synthesizer = assemble({"indextts": engine}, "lena", cache=cache).synthesizer
            wall, cpu = time.perf_counter(), time.process_time()
            if way == "one by one":
                outcomes = [await synthesizer.render_for_cache(text, voice) for text in texts]
            else:
                outcomes = []
                for start in range(0, len(texts), batch):
                    outcomes += await synthesizer.render_many_for_cache(texts[start : start + batch], voice)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert outcomes == ["rendered"] * len(texts), outcomes
            audio = [cache.get(synthesizer.key_for(voice, voice.output_format, text)) for text in texts]
            results[way] = {"wall": wall, "cpu": cpu, "audio": audio, "seconds": sum(len(pcm) for pcm in audio) / 2 / voice.sample_rate}
        engine.close()
    return results


def published_model() -> str:
    """What the published size's measured stages say batching the GPT alone can give."""
    text = RESULTS.read_text(encoding="utf-8")
    gpt = re.search(r"\| b\. GPT generation[^|]*\|[^|]*\|[^|]*\| ([\d.]+) / ([\d.]+) \|", text)
    total = re.search(r"\| \*\*total b–e\*\*[^|]*\|[^|]*\|[^|]*\| ([\d.]+) / ([\d.]+) \|", text)
    batch4 = re.search(r"\| fp32 batch 4 \| [\d.]+ \| [\d.]+ \| ([\d.]+)×", text)
    if not (gpt and total and batch4):
        return "(the published-size sections of RESULTS.md were not found: no model worked out)"
    gpt_s, total_s, speedup = float(gpt.group(2)), float(total.group(2)), float(batch4.group(1))
    batched = gpt_s / speedup + (total_s - gpt_s)
    return (
        f"Worked out, not measured: at the published size (section `indextts`, engine fp32, median) a sentence of a voice "
        f"heard before takes {total_s:.1f} s, {gpt_s:.1f} s of it GPT generation; batch 4 decodes {speedup:.2f}× the codes per "
        f"CPU second (section `indextts_gpt_decoding`). Batching the GPT alone then gives {gpt_s / speedup:.1f} + "
        f"{total_s - gpt_s:.1f} = {batched:.1f} s a sentence: **{total_s / batched:.2f}×** the sentences per hour "
        f"(target ≥ 1.5×: {'held' if total_s / batched >= 1.5 else 'not held'}; s2mel's diffusion, unbatched, is then most of the time)."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_texts_argument(parser, "announcements_en.txt and replies_en.txt")
    parser.add_argument("--sentences", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    # Units as the queue holds them: sentences with no clause a request's splitter would cut off.
    texts = [t for t in text_lines(args.texts, ["announcements_en.txt", "replies_en.txt"]) if "," not in t][: args.sentences]
    started = time.perf_counter()
    model = tiny_model()
    with LoadMonitor() as load:
        results = asyncio.run(measure(model, texts, args.batch, args.threads))
    alone, batched = results["one by one"], results["batched"]
    same = alone["audio"] == batched["audio"]
    rows = []
    for way, result in results.items():
        per_hour, per_cpu_hour = 3600 * len(texts) / result["wall"], 3600 * len(texts) / result["cpu"]
        rows.append(f"| {way} | {result['wall']:.1f} | {result['cpu']:.1f} | {per_hour:.0f} | {per_cpu_hour:.0f} | {result['seconds']:.1f} |")
    markdown = "\n".join(
        [
            "## Background renders: one by one vs batched (render queue, pre-renders)",
            "",
            f"{timestamp()} · {machine_description()} · {args.threads} ONNX Runtime threads.  ",
            load.summary(),
            "",
            f"**Size: the tests' tiny IndexTTS-2 model** (random weights; GPT 1280 wide, 2 of the published 24 layers; "
            f"acoustic models tiny), not the published size: its files take longer to build than this run had. "
            f"{len(texts)} sentences (announcements and replies of shared/texts), seeded sampling, 25 diffusion steps, "
            f"at most 200 codes each; batches of {args.batch} through `Synthesizer.render_many_for_cache`, one by one "
            f"through `Synthesizer.render_for_cache`, each into a fresh cache.",
            "",
            "| renders | wall s | CPU s | sentences per hour (wall) | sentences per CPU hour | audio s |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Batched vs one by one: **{alone['wall'] / batched['wall']:.2f}×** the sentences per hour (wall), "
            f"{alone['cpu'] / batched['cpu']:.2f}× per CPU second; same audio, byte for byte: {'yes' if same else '**no**'}.",
            "",
            published_model(),
            "",
            "Command:",
            "",
            "```sh",
            command_line(),
            "```",
            "",
            f"Whole run {time.perf_counter() - started:.0f} s (tiny model cached in `benchmarks/.work/render_batch/`).",
        ]
    )
    print(markdown)
    if not args.no_write:
        write_section(SECTION, markdown)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
