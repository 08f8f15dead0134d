"""IndexTTS2: the official PyTorch pipeline vs this project's ONNX Runtime engine, stage by stage.

Same work as shared/indextts2/BASELINE.md: the published architecture with RANDOM weights
(no checkpoint is downloaded), one sentence of 20 text tokens, 175 GPT tokens forced
(min = max new tokens), a 5 s reference clip, 25 flow-matching steps with CFG 0.7, BigVGAN;
both sides on the same number of threads, sampling with the package defaults (top_p 0.8,
top_k 30, T 0.8, repetition penalty 10). The official side runs with its default 3 beams
and with 1 beam (like for like: the engine decodes one beam). Each side runs in its own
process so its peak RSS is its own. Then the int8 graphs (GPT core and diffusion step):
speed at full size; accuracy of the GPT at the tiny test size (greedy codes and latents
against fp32), of the diffusion step at the tiny and the full size (mel against fp32).

    .venv/bin/python benchmarks/indextts_bench.py            # full size: ~10 GB of files, long
    .venv/bin/python benchmarks/indextts_bench.py --tiny     # the tiny test model: a smoke run

Official files and the exported model folder are built once under benchmarks/.work/indextts/
(gitignored) and reused. Writes its section of benchmarks/RESULTS.md unless --no-write.

It builds the published-size files, runs both sides in child processes and writes the
report.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import cosine, export_once, proc_status_mib, run_json_child  # noqa: E402

FULL_CONFIG = ROOT.parent / "shared" / "indextts2" / "config.yaml"
TINY_CONFIG = ROOT / "tests" / "indextts" / "tiny_config.yaml"
WORK = ROOT / "benchmarks" / ".work" / "indextts"
SECTION = "indextts"
STAGES = ("a_conditioning", "b_gpt_generate", "c_gpt_forward", "d_s2mel", "e_bigvgan")
STAGE_LABELS = {
    "a_conditioning": "a. speaker + emotion conditioning (w2v-BERT x2, codec, CAMPPlus, ref mel; engine: + GPT conditioning graphs, which the official code runs inside b)",
    "b_gpt_generate": "b. GPT generation, {tokens} tokens, sampling (engine: 1 beam)",
    "c_gpt_forward": "c. GPT forward to latents",
    "d_s2mel": "d. s2mel: {steps} flow-matching steps, CFG {cfg}",
    "e_bigvgan": "e. BigVGAN",
}


# -- official files ------------------------------------------------------------------------------


def build_official_files(config: Path, out: Path, tiny: bool) -> dict[str, Path]:
    """Official-looking files with random weights (cached by a stamp file)."""
    stamp = out / ".complete"
    paths = {
        "checkpoints": out,
        "w2v_bert": out / "w2v-bert-2.0",
        "semantic_codec": out / "semantic_codec" / "model.safetensors",
        "campplus": out / "campplus_cn_common.bin",
        "bigvgan": out / "bigvgan",
    }
    if stamp.is_file():
        return paths
    import torch

    torch.manual_seed(0)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if tiny:
        from tests.indextts.tiny_acoustic import build_tiny_acoustic
        from tests.indextts.tiny_gpt import write_tiny_gpt_checkpoints

        write_tiny_gpt_checkpoints(out, config)
        build_tiny_acoustic(out, config)
    else:
        _build_full(config, out)
    stamp.write_text("ok\n")
    return paths


def _build_full(config: Path, out: Path) -> None:
    import safetensors.torch
    import torch
    from omegaconf import OmegaConf
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    from tests.indextts.tiny_gpt import make_bpe_model
    from wyoming_indextts.export import official_package
    from wyoming_indextts.export.official_acoustic import import_semantic_codec_builder
    from wyoming_indextts.export.gpt import build_unified_voice

    official_package()
    from indextts.s2mel.modules.bigvgan import bigvgan
    from indextts.s2mel.modules.bigvgan.env import AttrDict
    from indextts.s2mel.modules.campplus.DTDNN import CAMPPlus
    from indextts.s2mel.modules.commons import MyModel

    cfg = OmegaConf.load(config)
    shutil.copyfile(config, out / "config.yaml")
    gpt = build_unified_voice(cfg.gpt)
    torch.save(gpt.state_dict(), out / "gpt.pth")
    del gpt
    gc.collect()
    total = sum(int(n) for n in cfg.emo_num)
    torch.save(torch.randn(total, 192), out / "feat1.pt")
    torch.save(torch.randn(total, int(cfg.gpt.model_dim)) * 0.05, out / "feat2.pt")
    make_bpe_model(out / "bpe.model")
    Wav2Vec2BertModel(Wav2Vec2BertConfig()).eval().save_pretrained(str(out / "w2v-bert-2.0"))
    gc.collect()
    torch.save({"mean": torch.randn(1024) * 0.1, "var": 0.5 + torch.rand(1024)}, out / "wav2vec2bert_stats.pt")
    codec = import_semantic_codec_builder()(cfg.semantic_codec)
    (out / "semantic_codec").mkdir()
    safetensors.torch.save_model(codec, str(out / "semantic_codec" / "model.safetensors"))
    s2mel = MyModel(cfg.s2mel, use_gpt_latent=True)
    torch.save({"net": {k: m.state_dict() for k, m in s2mel.models.items()}}, out / "s2mel.pth")
    torch.save(CAMPPlus(feat_dim=80, embedding_size=192).state_dict(), out / "campplus_cn_common.bin")
    bundled = Path(bigvgan.__file__).with_name("config.json")
    (out / "bigvgan").mkdir()
    shutil.copyfile(bundled, out / "bigvgan" / "config.json")
    vocoder = bigvgan.BigVGAN(AttrDict(json.loads(bundled.read_text())), use_cuda_kernel=False)
    torch.save({"generator": vocoder.state_dict()}, out / "bigvgan" / "bigvgan_generator.pt")


def export_model(paths: dict[str, Path], out: Path) -> Path:
    """The published-size (or tiny) folder exported with its int8 graphs (see `export_once`)."""
    return export_once(
        [
            "--checkpoints", str(paths["checkpoints"]), "--w2v-bert", str(paths["w2v_bert"]),
            "--semantic-codec", str(paths["semantic_codec"]), "--campplus", str(paths["campplus"]),
            "--bigvgan", str(paths["bigvgan"]), "--int8",
        ],
        out,
    )  # fmt: skip


# -- measured children ---------------------------------------------------------------------------


def clip_and_tokens(work: Path, args: argparse.Namespace) -> tuple[Path, list[int]]:
    import numpy as np
    import soundfile as sf

    from tests.indextts.clips import voiced_clip

    clip = work / f"clip-{args.clip_seconds:g}s.wav"
    if not clip.is_file():
        sf.write(str(clip), voiced_clip(args.clip_seconds, 24000, seed=4), 24000, subtype="PCM_16")
    ids = np.random.default_rng(3).integers(2, 250, size=args.text_tokens).tolist()
    return clip, [int(i) for i in ids]


def child_official(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch
    from omegaconf import OmegaConf
    from transformers import SeamlessM4TFeatureExtractor

    from wyoming_indextts.export import official_package
    from wyoming_indextts.export.gpt import load_unified_voice
    from wyoming_indextts.export.official_acoustic import AcousticSources, load_official_acoustic

    official_package()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    ck = work / "official"
    cfg = OmegaConf.load(ck / "config.yaml")
    gpt = load_unified_voice(cfg.gpt, ck / "gpt.pth")
    off = load_official_acoustic(
        cfg,
        AcousticSources(
            s2mel_checkpoint=ck / "s2mel.pth", w2v_stats=ck / "wav2vec2bert_stats.pt", w2v_bert_dir=ck / "w2v-bert-2.0",
            semantic_codec=ck / "semantic_codec" / "model.safetensors", campplus=ck / "campplus_cn_common.bin",
            bigvgan_dir=ck / "bigvgan",
        ),
    )  # fmt: skip
    clip, ids = clip_and_tokens(work, args)
    extract = SeamlessM4TFeatureExtractor(padding_value=1.0)
    results: dict[str, dict[str, Any]] = {}
    for beams in args.official_beams:
        results[str(beams)] = _official_runs(args, gpt, off, extract, clip, ids, beams)
    return {
        "by_beams": results,
        "peak_rss_mib": proc_status_mib("VmHWM"),
        "params_m": sum(p.numel() for p in gpt.parameters()) / 1e6,
        "np": np.__version__,
    }


def _official_runs(args, gpt, off, extract, clip: Path, ids: list[int], beams: int) -> dict[str, Any]:
    """infer_v2's steps with the package defaults except `beams` (3 is the default)."""
    import librosa
    import torch

    from tests.indextts.test_engine_parity import torchaudio_resample
    from wyoming_indextts.engines.indextts.features import campplus_features

    from indextts.s2mel.modules.audio import mel_spectrogram

    timings: dict[str, list[float]] = {stage: [] for stage in STAGES}

    def get_emb(wav16: torch.Tensor) -> torch.Tensor:
        inputs = extract(wav16, sampling_rate=16000, return_tensors="pt")
        hidden = off.semantic_model(**inputs, output_hidden_states=True).hidden_states[17]
        return (hidden - off.semantic_mean) / off.semantic_std

    for run in range(args.warmup + args.runs):
        keep = run >= args.warmup
        with torch.inference_mode():
            start = time.perf_counter()
            audio, sr = librosa.load(str(clip))
            audio = torch.tensor(audio).unsqueeze(0)[:, : 15 * sr]
            audio_16k = torchaudio_resample(audio, sr, 16000)
            spk = get_emb(audio_16k)
            _, s_ref = off.semantic_codec.quantize(spk)
            ref_mel = mel_spectrogram(audio.float(), n_fft=1024, num_mels=80, sampling_rate=22050, hop_size=256, win_size=1024, fmin=0, fmax=None)
            style = off.campplus(torch.from_numpy(campplus_features(audio_16k[0].numpy())))
            prompt = off.s2mel.models["length_regulator"](s_ref, ylens=torch.LongTensor([ref_mel.size(2)]), n_quantizers=3, f0=None)[0]
            emo_audio, _ = librosa.load(str(clip), sr=16000)
            emo = get_emb(torch.tensor(emo_audio).unsqueeze(0)[:, : 15 * 16000])
            lengths = torch.tensor([1024])
            emovec = gpt.merge_emovec(spk, emo, lengths, lengths, alpha=1.0)
            t_a = time.perf_counter() - start

            text = torch.tensor(ids, dtype=torch.int32)[None]
            start = time.perf_counter()
            codes, latent_in = gpt.inference_speech(
                spk, text, emo, cond_lengths=lengths, emo_cond_lengths=lengths, emo_vec=emovec, do_sample=True,
                top_p=0.8, top_k=30, temperature=0.8, num_return_sequences=1, length_penalty=0.0, num_beams=beams,
                repetition_penalty=10.0, max_generate_length=args.tokens, min_new_tokens=args.tokens,
            )  # fmt: skip
            t_b = time.perf_counter() - start
            codes = codes[:, : args.tokens]
            start = time.perf_counter()
            latent = gpt(
                latent_in, text, torch.tensor([text.shape[-1]]), codes, torch.tensor([codes.shape[-1]]), emo,
                cond_mel_lengths=lengths, emo_cond_mel_lengths=lengths, emo_vec=emovec, use_speed=torch.zeros(1).long(),
            )  # fmt: skip
            t_c = time.perf_counter() - start
            start = time.perf_counter()
            latent = off.s2mel.models["gpt_layer"](latent)
            s_infer = off.semantic_codec.quantizer.vq2emb(codes.unsqueeze(1)).transpose(1, 2) + latent
            cond = off.s2mel.models["length_regulator"](s_infer, ylens=(torch.LongTensor([codes.shape[-1]]) * 1.72).long(), n_quantizers=3, f0=None)[0]
            cat = torch.cat([prompt, cond], dim=1)
            mel = off.s2mel.models["cfm"].inference(cat, torch.LongTensor([cat.size(1)]), ref_mel, style, None, args.steps, inference_cfg_rate=args.cfg)
            mel = mel[:, :, ref_mel.size(-1) :]
            t_d = time.perf_counter() - start
            start = time.perf_counter()
            wav = off.bigvgan(mel.float())
            t_e = time.perf_counter() - start
        if keep:
            for stage, value in zip(STAGES, (t_a, t_b, t_c, t_d, t_e)):
                timings[stage].append(value)
        print(f"official {beams} beam(s) run {run}: " + " ".join(f"{v:.2f}" for v in (t_a, t_b, t_c, t_d, t_e)), file=sys.stderr)
    return {"timings": timings, "audio_seconds": wav.shape[-1] / 22050, "mel_frames": int(cat.size(1))}


def child_engine(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np


    from wyoming_indextts.engines.indextts import IndexTTSModel, IndexTTSOptions, Pipeline
    from wyoming_indextts.engines.indextts.conditioning import AcousticConditioner, load_mel_settings
    from wyoming_indextts.engines.indextts.gpt import trim_codes
    from wyoming_indextts.engines.indextts.preparation import CONDITIONING_GRAPHS, condition_voice, release_memory
    from wyoming_indextts.engines.indextts.sampling import Sampler, SamplingOptions

    work = Path(args.work)
    model = IndexTTSModel.open(work / "model", verify=False, threads=args.threads)
    clip, ids = clip_and_tokens(work, args)
    engine_options = IndexTTSOptions(threads=args.threads)
    conditioner = AcousticConditioner(model.session, load_mel_settings(model.path))
    pipeline = Pipeline(model, IndexTTSOptions(int8=args.int8, diffusion_steps=args.steps, cfg_rate=args.cfg, threads=args.threads))
    gpt = pipeline.gpt
    timings: dict[str, list[float]] = {stage: [] for stage in STAGES}
    serving_rss = None
    for run in range(args.warmup + args.runs):
        keep = run >= args.warmup
        start = time.perf_counter()
        voice = condition_voice(model, conditioner, clip, engine_options)
        t_a = time.perf_counter() - start
        if run == args.warmup + args.runs - 1:
            for graph in CONDITIONING_GRAPHS:
                model.release(graph)
            conditioner.close()
            release_memory()
            serving_rss = proc_status_mib("VmRSS")
        rng = np.random.default_rng(run)
        prefix = pipeline.prefix(voice)
        start = time.perf_counter()
        raw = gpt.generate(prefix, ids, Sampler(SamplingOptions(), rng), args.tokens, min_new_tokens=args.tokens)
        t_b = time.perf_counter() - start
        codes = trim_codes(raw, gpt.config.stop_mel_token)[: args.tokens]
        start = time.perf_counter()
        latents = gpt.latents(prefix, ids, codes)
        t_c = time.perf_counter() - start
        start = time.perf_counter()
        mel, noise = pipeline.mel(latents, codes, voice, rng=rng)
        t_d = time.perf_counter() - start
        start = time.perf_counter()
        wav = pipeline.vocoder(mel)
        t_e = time.perf_counter() - start
        if keep:
            for stage, value in zip(STAGES, (t_a, t_b, t_c, t_d, t_e)):
                timings[stage].append(value)
        print(f"engine{' int8' if args.int8 else ''} run {run}: " + " ".join(f"{v:.2f}" for v in (t_a, t_b, t_c, t_d, t_e)), file=sys.stderr)
    return {
        "timings": timings,
        "peak_rss_mib": proc_status_mib("VmHWM"),
        "serving_rss_mib": serving_rss,
        "audio_seconds": wav.shape[-1] / pipeline.sample_rate,
        "mel_frames": int(noise.shape[2]),
    }


def child_int8_accuracy(args: argparse.Namespace) -> dict[str, Any]:
    """fp32 vs int8 graphs: the GPT at the tiny size (greedy codes, latents); the diffusion
    step at the tiny and the full size (mel after every step from the same noise)."""
    import numpy as np

    from wyoming_indextts.engines.indextts import IndexTTSModel, IndexTTSOptions
    from wyoming_indextts.engines.indextts.conditioning import AcousticConditioner, load_mel_settings
    from wyoming_indextts.engines.indextts.format import EMOTION_GRAPH, SPEAKER_GRAPH
    from wyoming_indextts.engines.indextts.gpt import GPTConfig, GPTRuntime, merge_emovec, trim_codes
    from wyoming_indextts.engines.indextts.preparation import condition_voice
    from wyoming_indextts.engines.indextts.s2mel import S2Mel, target_mel_frames
    from wyoming_indextts.engines.indextts.sampling import Sampler, SamplingOptions

    tiny = IndexTTSModel.open(Path(args.tiny_work) / "model", verify=False, threads=args.threads)
    cfg = tiny.config
    arrays = {n: tiny.array(f) for n, f in cfg["gpt_arrays"].items()}
    fp32 = GPTRuntime(tiny.session("gpt"), arrays, GPTConfig.from_mapping(cfg["gpt"]))
    int8 = GPTRuntime(tiny.session("gpt_int8"), arrays, GPTConfig.from_mapping(cfg["gpt"]))
    rng = np.random.default_rng(0)
    rows = []
    for case in range(args.accuracy_cases):
        features = rng.standard_normal((1, 60 + 7 * case, 1024), dtype=np.float32)
        (latents,) = tiny.session(SPEAKER_GRAPH).run(None, {"features": features})
        (emovec,) = tiny.session(EMOTION_GRAPH).run(None, {"features": features})
        prefix = fp32.conditioning_prefix(latents, merge_emovec(emovec, emovec))
        ids = rng.integers(2, 250, size=15).tolist()
        greedy = SamplingOptions(do_sample=False)
        a = trim_codes(fp32.generate(prefix, ids, Sampler(greedy), 60), cfg["gpt"]["stop_mel_token"])
        b = trim_codes(int8.generate(prefix, ids, Sampler(greedy), 60), cfg["gpt"]["stop_mel_token"])
        same = int(np.argmax(np.append(a[: len(b)] != b[: len(a)], True))) if min(len(a), len(b)) else 0
        la, lb = fp32.latents(prefix, ids, a), int8.latents(prefix, ids, a)  # same codes: latents only
        rows.append({"codes_fp32": len(a), "codes_int8": len(b), "identical_prefix": same, "latent_cosine": cosine(la, lb)})

    def diffusion_cosines(model_dir: Path, cases: int, n_codes: int) -> list[float]:
        model = IndexTTSModel.open(model_dir, verify=False, threads=args.threads)
        conditioner = AcousticConditioner(model.session, load_mel_settings(model.path))
        clip, _ = clip_and_tokens(Path(args.work), args)
        voice = condition_voice(model, conditioner, clip, IndexTTSOptions(threads=args.threads))
        conditioner.close()
        width = model.config["gpt"]["model_dim"]
        float_s2mel, int8_s2mel = S2Mel(model.session), S2Mel(model.session, "s2mel_estimator_int8")
        found = []
        for case in range(cases):
            draw = np.random.default_rng(100 + case)
            latent = draw.standard_normal((1, n_codes, width), dtype=np.float32)
            codes = draw.integers(0, 8192, (1, n_codes))
            noise = draw.standard_normal((1, 80, voice.ref_mel.shape[2] + target_mel_frames(n_codes)), dtype=np.float32)
            mels = [s.generate(latent, codes, voice, steps=args.steps, cfg_rate=args.cfg, noise=noise) for s in (float_s2mel, int8_s2mel)]
            found.append(cosine(*mels))
        return found

    return {
        "cases": rows,
        "diffusion_tiny": diffusion_cosines(Path(args.tiny_work) / "model", args.accuracy_cases, 41),
        "diffusion_full": diffusion_cosines(Path(args.work) / "model", 1, args.tokens),
    }


# -- orchestration -------------------------------------------------------------------------------


def run_child(kind: str, args: argparse.Namespace, extra: list[str] = ()) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, "--work", str(args.work), "--threads", str(args.threads),
               "--tokens", str(args.tokens), "--text-tokens", str(args.text_tokens), "--clip-seconds", str(args.clip_seconds),
               "--runs", str(args.runs), "--warmup", str(args.warmup), "--steps", str(args.steps), "--cfg", str(args.cfg),
               "--tiny-work", str(args.tiny_work), "--accuracy-cases", str(args.accuracy_cases),
               "--official-beams", *map(str, args.official_beams), *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    return run_json_child(command, kind, env)


def columns(official: dict[str, Any] | None, engine: dict[str, Any], int8: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """(heading, result) per measured side, official defaults first."""
    found = []
    for beams, result in sorted((official or {}).get("by_beams", {}).items(), key=lambda item: -int(item[0])):
        note = "defaults" if beams == "3" else "like for like" if beams == "1" else ""
        found.append((f"official PyTorch, {beams} beam{'s' if beams != '1' else ''} ({note})", {**result, "peak_rss_mib": official["peak_rss_mib"]}))
    found.append(("engine fp32", engine))
    if int8 is not None:
        found.append(("engine int8 (GPT + diffusion)", int8))
    return found


def total(result: dict[str, Any], fn, stages: tuple[str, ...] = STAGES) -> float:
    return sum(fn(result["timings"][stage]) for stage in stages)


def table(sides: list[tuple[str, dict[str, Any]]], args) -> str:
    lines = [
        "| stage (min / median s) | " + " | ".join(name for name, _ in sides) + " |",
        "|---|" + "---|" * len(sides),
    ]
    for stage in STAGES:
        label = STAGE_LABELS[stage].format(tokens=args.tokens, steps=args.steps, cfg=args.cfg)
        cells = [f"{min(r['timings'][stage]):.2f} / {statistics.median(r['timings'][stage]):.2f}" for _, r in sides]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    per_request = STAGES[1:]
    lines.append("| **total a–e** | " + " | ".join(f"{total(r, min):.2f} / {total(r, statistics.median):.2f}" for _, r in sides) + " |")
    lines.append(
        "| **total b–e** (a voice heard before: both sides keep its conditioning) | "
        + " | ".join(f"{total(r, min, per_request):.2f} / {total(r, statistics.median, per_request):.2f}" for _, r in sides)
        + " |"
    )
    lines.append(
        "| real-time factor a–e (median) | "
        + " | ".join(f"{total(r, statistics.median) / r['audio_seconds']:.2f}" for _, r in sides)
        + " |"
    )

    def rss(result: dict[str, Any]) -> str:
        text = f"{result['peak_rss_mib']:.0f}"
        if result.get("serving_rss_mib") is not None:
            text += f" (serving only: {result['serving_rss_mib']:.0f})"
        return text

    lines.append("| peak RSS MiB | " + " | ".join(rss(r) for _, r in sides) + " |")
    return "\n".join(lines)


BASELINE_DEFAULTS_S = 148.7
"""shared/indextts2/BASELINE.md: the official defaults, a–e, measured on another CPU (2 AMD EPYC cores)."""
TARGETS = {"defaults": 5.0, "like for like": 2.0}


def speedups(sides: list[tuple[str, dict[str, Any]]], published_size: bool) -> list[str]:
    """Median totals of each engine column against each official column, with the targets
    (at least 5x the official defaults, at least 2x like for like) marked held or not;
    at the published size also against BASELINE.md's figure."""
    official = [(name, r) for name, r in sides if name.startswith("official")]
    ours = [(name, r) for name, r in sides if not name.startswith("official")]
    lines = []
    for name, result in ours:
        parts = []
        for ref_name, ref in official:
            whole = total(ref, statistics.median) / total(result, statistics.median)
            request = total(ref, statistics.median, STAGES[1:]) / total(result, statistics.median, STAGES[1:])
            target = next((t for key, t in TARGETS.items() if key in ref_name), None)
            verdict = "" if target is None else f" (target ≥ {target:g}×: {'held' if whole >= target else 'not held'})"
            parts.append(f"{whole:.2f}× a–e{verdict}, {request:.2f}× b–e vs {ref_name}")
        if published_size:
            baseline = BASELINE_DEFAULTS_S / total(result, statistics.median)
            parts.append(f"{baseline:.2f}× a–e vs BASELINE.md's {BASELINE_DEFAULTS_S} s (another CPU: not a same-machine comparison)")
        lines.append(f"- {name}: " + "; ".join(parts))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny test configuration (smoke run)")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--tiny-work", type=Path, default=WORK / "tiny")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=175)
    parser.add_argument("--text-tokens", type=int, default=20)
    parser.add_argument("--clip-seconds", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--cfg", type=float, default=0.7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--accuracy-cases", type=int, default=4)
    parser.add_argument("--official-beams", type=int, nargs="+", default=[3, 1], help="beam counts the official side runs (3: its default)")
    parser.add_argument("--skip-official", action="store_true", help="do not run the PyTorch side")
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the table, do not touch RESULTS.md")
    parser.add_argument("--child", choices=["official", "engine", "engine-int8", "int8-accuracy"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work = args.work or (WORK / ("tiny" if args.tiny else "full"))
    args.int8 = args.child == "engine-int8"

    if args.child:
        runner = {"official": child_official, "engine": child_engine, "engine-int8": child_engine, "int8-accuracy": child_int8_accuracy}
        print(json.dumps(runner[args.child](args)))
        return 0

    from _report import LoadMonitor, machine_description, timestamp, write_section

    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    config = TINY_CONFIG if args.tiny else FULL_CONFIG
    paths = build_official_files(config, args.work / "official", args.tiny)
    export_model(paths, args.work / "model")
    if not args.no_int8:
        export_model(build_official_files(TINY_CONFIG, args.tiny_work / "official", True), args.tiny_work / "model")
    with LoadMonitor() as load:
        official = None if args.skip_official else run_child("official", args)
        engine = run_child("engine", args)
        int8 = None if args.no_int8 else run_child("engine-int8", args)
        accuracy = None if args.no_int8 else run_child("int8-accuracy", args)
    sides = columns(official, engine, int8)

    lines = [
        f"## IndexTTS2: official PyTorch vs ONNX Runtime engine ({'tiny test model' if args.tiny else 'published architecture'}, random weights)",
        "",
        f"{timestamp()} · {machine_description()} · {args.threads} threads each side.",
        load.summary(),
        "",
        f"Work: {args.text_tokens} text tokens, {args.tokens} GPT tokens forced (min = max new tokens), "
        f"{engine['mel_frames']} mel frames in s2mel, {engine['audio_seconds']:.3f} s of audio; "
        f"{args.clip_seconds:g} s reference clip; {args.runs} timed runs after {args.warmup} warm-up.",
        "",
        table(sides, args),
        "",
        "Speed-up (median totals):",
        "",
        *speedups(sides, published_size=not args.tiny),
        "",
    ]
    if accuracy is not None:
        lines += [
            "int8 graphs (export `--int8`: dynamic int8 quantisation of the MatMul weights, per channel). "
            "`gpt_int8.onnx` against fp32 at the tiny test size, greedy decoding (random weights: a lower bound on what trained weights do):",
            "",
            "| case | fp32 codes | int8 codes | identical leading codes | latent cosine (same codes) |",
            "|---|---|---|---|---|",
            *[
                f"| {i + 1} | {row['codes_fp32']} | {row['codes_int8']} | {row['identical_prefix']} | {row['latent_cosine']:.5f} |"
                for i, row in enumerate(accuracy["cases"])
            ],
            "",
            f"`s2mel_estimator_int8.onnx` against fp32: mel after {args.steps} guided steps from the same noise and inputs, cosine "
            f"{', '.join(f'{c:.5f}' for c in accuracy['diffusion_tiny'])} at the tiny size, "
            f"{', '.join(f'{c:.5f}' for c in accuracy['diffusion_full'])} at the published size ({args.tokens} codes after the {args.clip_seconds:g} s clip).",
            "",
        ]
    lines += [
        "Command:",
        "",
        "```sh",
        ".venv/bin/python benchmarks/indextts_bench.py " + " ".join(sys.argv[1:]),
        "```",
        "",
        f"Whole run {time.perf_counter() - started:.0f} s (files and export cached in `benchmarks/.work/indextts/`).",
    ]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        write_section(SECTION + ("-tiny" if args.tiny else ""), markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
