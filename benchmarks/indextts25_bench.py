"""IndexTTS-2.5: the official PyTorch code (`indextts25-inference`) vs this project's ONNX
Runtime runtime, stage by stage, beside the IndexTTS-2 engine, all in one run on the same
threads.

Work: the same audio length as benchmarks/indextts_bench.py (IndexTTS-2: 175 codes at 50 Hz,
3.50 s): 88 codes at 25 Hz forced (min = max new tokens) → 176 codec frames → 302 mel frames
(3.51 s); 20 text tokens; a 5 s reference clip; 25 flow-matching steps at CFG 0.7; BigVGAN;
sampling with the package defaults and ONE beam on both sides (like for like). Columns:

* official 2.5 PyTorch;
* engine 2.5 fp32, and engine 2.5 int8 (`--int8`: int8 GPT core and diffusion step; not exact,
  opt-in; the mel cosine to fp32 from the same inputs is reported beside it);
* the IndexTTS-2 fp32 engine on its published-size folder (benchmarks/indextts_bench.py's
  files and child, 175 codes), measured in this same run.

Each side runs in its own process: one warm-up, then `--runs` timed runs (median per stage).

Architecture: IndexTTS-2.5's config.yaml is not on this machine, so the sizes are ASSUMED:
the GPT, emotion conformer, s2mel and BigVGAN of the published IndexTTS-2 config
(shared/indextts2/config.yaml, which 2.5's code reads unchanged), the codec decoder at
`EnhancedCodec`'s defaults (Vocos 384 wide, 12 layers), w2v-BERT 2.0 and CAMPPlus at their
published sizes; random weights. The text vocabulary is the tiny test one (the table size does
not change the compute).

    .venv/bin/python benchmarks/indextts25_bench.py

Files are built once under benchmarks/.work/indextts25/ and benchmarks/.work/indextts/full/
(gitignored). Writes its section of benchmarks/RESULTS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import cosine, export_once, run_json_child  # noqa: E402

FULL_CONFIG = ROOT.parent / "shared" / "indextts2" / "config.yaml"
WORK = ROOT / "benchmarks" / ".work" / "indextts25"
SECTION = "indextts25"
CODES = 88
CODES20 = 175
"""IndexTTS-2's codes (50 Hz) for the same audio length."""
TEXT_TOKENS = 20
CLIP_SECONDS = 5.0
STEPS = 25
CFG_RATE = 0.7
STAGES = {
    "a": "a. speaker + emotion conditioning (w2v-BERT x2, CAMPPlus, ref mel, regulator, emotion vectors)",
    "b": f"b. GPT generation, sampling, 1 beam (2.5: {CODES} codes at 25 Hz; 2: {CODES20} codes at 50 Hz)",
    "c": "c. 2.5: codec decoder + length regulator; 2: GPT forward to latents",
    "d": f"d. s2mel: {STEPS} flow-matching steps, CFG {CFG_RATE} (2: after its front, GPT layer + vq2emb + regulator)",
    "e": "e. BigVGAN",
}
STAGES20 = dict(zip(STAGES, ("a_conditioning", "b_gpt_generate", "c_gpt_forward", "d_s2mel", "e_bigvgan")))
"""benchmarks/indextts_bench.py's stage names for the same stages."""


def build_files(out: Path) -> Path:
    import shutil

    import torch
    from omegaconf import OmegaConf
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    from tests.indextts.tiny25 import TOKENIZER_NAME, write_tiny_tiktoken
    from wyoming_indextts.export import official_package

    official_package()
    from indextts.s2mel.modules.bigvgan import bigvgan
    from indextts.s2mel.modules.bigvgan.env import AttrDict
    from indextts.s2mel.modules.campplus.DTDNN import CAMPPlus
    from indextts.s2mel.modules.commons import MyModel
    from indextts25.codec.models import EnhancedCodec
    from indextts25.gpt.model_v2 import UnifiedVoice
    from indextts25.utils.tokenizer import get_encoding

    stamp = out / ".complete"
    if stamp.is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    torch.manual_seed(0)
    write_tiny_tiktoken(out / f"{TOKENIZER_NAME}.tiktoken")
    cfg = OmegaConf.load(FULL_CONFIG)
    cfg.gpt.number_text_tokens = int(get_encoding.__wrapped__(TOKENIZER_NAME, model_dir=str(out)).n_vocab)
    cfg.semantic_codec = {}
    cfg.version = "2.5"
    OmegaConf.save(cfg, out / "config.yaml")
    gpt = UnifiedVoice(**OmegaConf.to_container(cfg.gpt, resolve=True))
    torch.save({"model": gpt.state_dict()}, out / "gpt.pth")
    del gpt
    torch.save({"model": EnhancedCodec().state_dict()}, out / "codec.pth")
    s2mel = MyModel(cfg.s2mel, use_gpt_latent=False)
    torch.save({"net": {k: m.state_dict() for k, m in s2mel.models.items()}}, out / "s2mel.pth")
    total = sum(int(n) for n in cfg.emo_num)
    torch.save(torch.randn(total, 192), out / "feat1.pt")
    torch.save(torch.randn(total, int(cfg.gpt.model_dim)) * 0.05, out / "feat2.pt")
    torch.save({"mean": torch.randn(1024) * 0.1, "var": 0.5 + torch.rand(1024)}, out / "wav2vec2bert_stats.pt")
    cache = out / "hf_cache"
    Wav2Vec2BertModel(Wav2Vec2BertConfig()).eval().save_pretrained(str(cache / "w2v-bert-2.0"))
    SeamlessM4TFeatureExtractor(padding_value=1.0).save_pretrained(str(cache / "w2v-bert-2.0"))
    torch.save(CAMPPlus(feat_dim=80, embedding_size=192).state_dict(), cache / "campplus_cn_common.bin")
    bundled = Path(bigvgan.__file__).with_name("config.json")
    (cache / "bigvgan").mkdir()
    shutil.copyfile(bundled, cache / "bigvgan" / "config.json")
    vocoder = bigvgan.BigVGAN(AttrDict(json.loads(bundled.read_text())), use_cuda_kernel=False)
    torch.save({"generator": vocoder.state_dict()}, cache / "bigvgan" / "bigvgan_generator.pt")
    stamp.write_text("ok\n")
    return out


def export(checkpoints: Path, out: Path) -> Path:
    return export_once(["--checkpoints", str(checkpoints), "--int8"], out)


def clip_path() -> Path:
    import soundfile as sf

    from tests.indextts.clips import voiced_clip

    clip = WORK / "clip-5s.wav"
    if not clip.is_file():
        sf.write(str(clip), voiced_clip(CLIP_SECONDS, 24000, seed=4), 24000, subtype="PCM_16")
    return clip


def text_ids() -> list[int]:
    import numpy as np

    return [int(i) for i in np.random.default_rng(3).integers(2, 250, size=TEXT_TOKENS)]


def timed_runs(run_once, runs: int, warmup: int, what: str) -> tuple[dict[str, list[float]], Any]:
    """`run_once()` → (stage seconds, result) `warmup + runs` times; the timed runs' seconds per
    stage and the last result."""
    times: dict[str, list[float]] = {key: [] for key in STAGES}
    result = None
    for run in range(warmup + runs):
        stage_times, result = run_once(run)
        print(f"{what} run {run}: " + " ".join(f"{stage_times[k]:.2f}" for k in STAGES), file=sys.stderr)
        if run >= warmup:
            for key in STAGES:
                times[key].append(stage_times[key])
    return times, result


def child_official(checkpoints: Path, threads: int, runs: int, warmup: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    from indextts25.infer_v2_5 import IndexTTS2, _audio_key
    from indextts25.utils.tokenizer import lang_to_token

    tts = IndexTTS2(cfg_path=str(checkpoints / "config.yaml"), model_dir=str(checkpoints), device="cpu")
    clip = str(clip_path())

    def once(run: int) -> tuple[dict[str, float], Any]:
        times: dict[str, float] = {}
        torch.manual_seed(run)
        tts._spk_cache.clear()  # every run conditions the clip again, as the engine's does
        tts._emo_cache.clear()
        with torch.no_grad():
            start = time.perf_counter()
            spk, style, prompt, ref_mel = tts._speaker_conditioning(clip, _audio_key(clip))
            emo = tts._emotion_conditioning(clip, _audio_key(clip))
            lengths = torch.tensor([spk.shape[-1]])
            emovec = tts.gpt.merge_emovec(spk, emo, lengths, lengths)
            times["a"] = time.perf_counter() - start
            start = time.perf_counter()
            codes = tts.gpt.inference_speech(
                torch.IntTensor([text_ids()]), torch.LongTensor([lang_to_token("en")]), emovec, style,
                max_generate_length=CODES, min_new_tokens=CODES, do_sample=True, top_p=0.8, top_k=30,
                temperature=0.8, num_beams=1, repetition_penalty=10.0,
            )  # fmt: skip
            times["b"] = time.perf_counter() - start
            start = time.perf_counter()
            features = tts.semantic_codec.decode(codes[:, :CODES])
            cond = tts.s2mel.models["length_regulator"](features, ylens=torch.LongTensor([int(features.shape[1] * 1.72)]))
            times["c"] = time.perf_counter() - start
            start = time.perf_counter()
            mu = torch.cat([prompt, cond], dim=1)
            mel = tts.s2mel.models["cfm"].inference(mu, torch.LongTensor([mu.size(1)]), ref_mel, style, None, STEPS, inference_cfg_rate=CFG_RATE)
            mel = mel[:, :, ref_mel.size(-1):]
            times["d"] = time.perf_counter() - start
            start = time.perf_counter()
            wav = tts.bigvgan(mel.float())
            times["e"] = time.perf_counter() - start
        return times, (int(codes.shape[1]), int(mu.shape[1]), wav.numel() / 22050)

    times, (codes, frames, audio) = timed_runs(once, runs, warmup, "official 2.5")
    return {"times": times, "codes": codes, "mel_frames": frames, "audio": audio}


def child_engine(model_dir: Path, threads: int, runs: int, warmup: int, int8: bool) -> dict[str, Any]:
    import numpy as np

    from wyoming_indextts.engines.indextts.conditioning import AcousticConditioner, load_mel_settings
    from wyoming_indextts.engines.indextts.format import S2MEL_ESTIMATOR_GRAPH
    from wyoming_indextts.engines.indextts.gpt import merge_emovec
    from wyoming_indextts.engines.indextts.text.frontend25 import LanguageIds
    from wyoming_indextts.engines.indextts.model import IndexTTSModel
    from wyoming_indextts.engines.indextts.options import IndexTTSOptions
    from wyoming_indextts.engines.indextts.pipeline25 import Pipeline25
    from wyoming_indextts.engines.indextts.preparation import condition_voice25
    from wyoming_indextts.engines.indextts.s2mel import S2Mel
    from wyoming_indextts.engines.indextts.sampling import Sampler, SamplingOptions
    from wyoming_indextts.engines.indextts.voice import prepare_clip_audio, read_clip

    model = IndexTTSModel.open(model_dir, threads=threads)
    pipeline = Pipeline25(model, IndexTTSOptions(diffusion_steps=STEPS, cfg_rate=CFG_RATE, int8=int8))
    conditioner = AcousticConditioner(model.session, load_mel_settings(model.path))

    def once(run: int) -> tuple[dict[str, float], Any]:
        times: dict[str, float] = {}
        start = time.perf_counter()
        samples, rate = read_clip(clip_path())
        voice = condition_voice25(model, conditioner, prepare_clip_audio(samples, rate))
        times["a"] = time.perf_counter() - start
        start = time.perf_counter()
        prefix = pipeline.gpt.conditioning_prefix(voice.speaker_latents, merge_emovec(voice.emovec_speaker, voice.emovec_emotion))
        sampler = Sampler(SamplingOptions(seed=run))
        codes = pipeline.gpt.generate(prefix, LanguageIds(text_ids(), "en"), sampler, CODES, CODES)
        times["b"] = time.perf_counter() - start
        start = time.perf_counter()
        cond = pipeline.decoder.condition(codes[None, :CODES])
        times["c"] = time.perf_counter() - start
        start = time.perf_counter()
        mu = np.concatenate([voice.prompt_condition, cond], axis=1)
        noise = np.random.default_rng(run).standard_normal((1, voice.ref_mel.shape[1], mu.shape[1]), dtype=np.float32)
        mel = pipeline.s2mel.sample(mu, voice.ref_mel, voice.style, steps=STEPS, cfg_rate=CFG_RATE, noise=noise)
        times["d"] = time.perf_counter() - start
        start = time.perf_counter()
        wav = pipeline.vocoder(mel)
        times["e"] = time.perf_counter() - start
        return times, (codes, mu, noise, mel, voice, wav)

    times, (codes, mu, noise, mel, voice, wav) = timed_runs(once, runs, warmup, f"engine 2.5 {'int8' if int8 else 'fp32'}")
    result = {"times": times, "codes": int(codes.size), "mel_frames": int(mu.shape[1]), "audio": wav.size / 22050}
    if int8:
        # the int8 diffusion step against fp32 from the very same inputs and noise
        fp32 = S2Mel(model.session, S2MEL_ESTIMATOR_GRAPH, model.speech.mel_frames_per_code)
        reference = fp32.sample(mu, voice.ref_mel, voice.style, steps=STEPS, cfg_rate=CFG_RATE, noise=noise)
        result["mel_cosine_to_fp32"] = cosine(mel, reference)
    return result


def child_engine20(threads: int, runs: int, warmup: int) -> dict[str, Any]:
    """The IndexTTS-2 fp32 engine on benchmarks/indextts_bench.py's published-size folder, by
    that benchmark's own measured child (its stages renamed to this table's)."""
    import indextts_bench

    paths = indextts_bench.build_official_files(FULL_CONFIG, indextts_bench.WORK / "full" / "official", tiny=False)
    indextts_bench.export_model(paths, indextts_bench.WORK / "full" / "model")
    args = argparse.Namespace(
        work=indextts_bench.WORK / "full", threads=threads, tokens=CODES20, text_tokens=TEXT_TOKENS,
        clip_seconds=CLIP_SECONDS, runs=runs, warmup=warmup, steps=STEPS, cfg=CFG_RATE,
        tiny_work=indextts_bench.WORK / "tiny", accuracy_cases=0, official_beams=[1],
    )  # fmt: skip
    engine = indextts_bench.run_child("engine", args)
    times = {key: engine["timings"][stage] for key, stage in STAGES20.items()}
    return {"times": times, "codes": CODES20, "mel_frames": engine["mel_frames"], "audio": engine["audio_seconds"]}


def run_child(kind: str, path: Path, threads: int, runs: int, warmup: int) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = [sys.executable, __file__, "--child", kind, "--path", str(path), "--threads", str(threads),
               "--runs", str(runs), "--warmup", str(warmup)]  # fmt: skip
    return run_json_child(command, kind, env)


def stage_median(result: dict[str, Any], key: str) -> float:
    return statistics.median(result["times"][key])


def total(result: dict[str, Any]) -> float:
    return sum(stage_median(result, key) for key in STAGES)


def per_audio_second(result: dict[str, Any]) -> float:
    return total(result) / result["audio"]


def report(sides: dict[str, dict[str, Any]], args: argparse.Namespace, seconds: float, load: Any) -> str:
    from _report import machine_description, timestamp

    official, fp32, int8, engine20 = (sides[k] for k in ("official", "engine", "engine-int8", "engine20"))
    columns = [official, fp32, int8, engine20]
    rows = [f"| {label} | " + " | ".join(f"{stage_median(c, key):.2f}" for c in columns) + " |" for key, label in STAGES.items()]
    rows.append("| **total a–e** | " + " | ".join(f"{total(c):.2f}" for c in columns) + " |")
    rows.append("| s of audio | " + " | ".join(f"{c['audio']:.3f}" for c in columns) + " |")
    rows.append("| **s per s of audio** | " + " | ".join(f"{per_audio_second(c):.2f}" for c in columns) + " |")
    held = lambda ok: "held" if ok else "not held"  # noqa: E731
    vs_official = total(official) / total(fp32)
    vs20 = per_audio_second(engine20) / per_audio_second(fp32)
    vs20_int8 = per_audio_second(engine20) / per_audio_second(int8)
    gpt_ratio = stage_median(engine20, "b") / stage_median(fp32, "b")
    return "\n".join(
        [
            "## IndexTTS-2.5: official PyTorch vs ONNX Runtime runtime, beside IndexTTS-2 (assumed published sizes, random weights)",
            "",
            f"{timestamp()} · {machine_description()} · {args.threads} threads each side · median of {args.runs} timed runs after {args.warmup} warm-up, each side in its own process.",
            load.summary(),
            "",
            f"Work: {TEXT_TOKENS} text tokens; 2.5: {fp32['codes']} codes at 25 Hz forced, {fp32['mel_frames']} mel frames in s2mel "
            f"(5 s prompt + new); IndexTTS-2: {engine20['codes']} codes at 50 Hz, {engine20['mel_frames']} mel frames. "
            "2.5's sizes are assumed (module docstring): its config.yaml is not on this machine.",
            "",
            "| stage (median s) | official 2.5 PyTorch, 1 beam | engine 2.5 fp32 | engine 2.5 int8 (GPT + diffusion) | engine IndexTTS-2 fp32 |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"- engine 2.5 fp32 vs official 2.5, like for like: {vs_official:.2f}× (target ≥ 2×: {held(vs_official >= 2)})",
            f"- engine 2.5 fp32 vs the IndexTTS-2 fp32 engine, per second of audio: {vs20:.2f}× (target ≥ 2×: {held(vs20 >= 2)}); "
            f"its GPT stage alone: {gpt_ratio:.2f}× (half the codes)",
            f"- engine 2.5 int8 vs the IndexTTS-2 fp32 engine, per second of audio: {vs20_int8:.2f}× (int8 changes the output: "
            f"opt-in; its mel from the same inputs has cosine {int8['mel_cosine_to_fp32']:.5f} to fp32's here, on random weights; "
            "how it sounds with trained weights is not measured)",
            "",
            "Command:",
            "",
            "```sh",
            f".venv/bin/python benchmarks/indextts25_bench.py --runs {args.runs} --warmup {args.warmup}",
            "```",
            "",
            f"Whole run {seconds:.0f} s (files and exports cached in `benchmarks/.work/`).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--prepare", action="store_true", help="build and export the files only, measure nothing")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child", choices=("official", "engine", "engine-int8", "engine20"), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "official":
            result = child_official(args.path, args.threads, args.runs, args.warmup)
        elif args.child == "engine20":
            result = child_engine20(args.threads, args.runs, args.warmup)
        else:
            result = child_engine(args.path, args.threads, args.runs, args.warmup, int8=args.child == "engine-int8")
        print(json.dumps(result))
        return
    from _report import LoadMonitor, write_section

    import indextts_bench

    started = time.perf_counter()
    checkpoints = build_files(WORK / "IndexTTS-2.5")
    model_dir = export(checkpoints, WORK / "model")
    clip_path()
    indextts_bench.export_model(
        indextts_bench.build_official_files(FULL_CONFIG, indextts_bench.WORK / "full" / "official", tiny=False),
        indextts_bench.WORK / "full" / "model",
    )
    if args.prepare:
        return
    paths = {"engine20": model_dir, "engine": model_dir, "engine-int8": model_dir, "official": checkpoints}
    with LoadMonitor() as load:
        sides = {kind: run_child(kind, path, args.threads, args.runs, args.warmup) for kind, path in paths.items()}
    text = report(sides, args, time.perf_counter() - started, load)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
