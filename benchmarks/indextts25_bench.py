"""IndexTTS-2.5: the official PyTorch code (`indextts25-inference`) vs this project's ONNX
Runtime runtime, stage by stage, one run each, same threads.

Work: the same audio length as benchmarks/indextts_bench.py (IndexTTS-2: 175 codes at 50 Hz,
3.50 s): 88 codes at 25 Hz forced (min = max new tokens) → 176 codec frames → 302 mel frames
(3.51 s); 20 text tokens; a 5 s reference clip; 25 flow-matching steps at CFG 0.7; BigVGAN;
sampling with the package defaults and ONE beam on both sides (like for like).

Architecture: IndexTTS-2.5's config.yaml is not on this machine, so the sizes are ASSUMED:
the GPT, emotion conformer, s2mel and BigVGAN of the published IndexTTS-2 config
(shared/indextts2/config.yaml, which 2.5's code reads unchanged), the codec decoder at
`EnhancedCodec`'s defaults (Vocos 384 wide, 12 layers), w2v-BERT 2.0 and CAMPPlus at their
published sizes; random weights. The text vocabulary is the tiny test one (the table size does
not change the compute).

    .venv/bin/python benchmarks/indextts25_bench.py

Files are built once under benchmarks/.work/indextts25/ (gitignored). Writes its section of
benchmarks/RESULTS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

FULL_CONFIG = ROOT.parent / "shared" / "indextts2" / "config.yaml"
WORK = ROOT / "benchmarks" / ".work" / "indextts25"
SECTION = "indextts25"
CODES = 88
TEXT_TOKENS = 20
CLIP_SECONDS = 5.0
STEPS = 25
CFG_RATE = 0.7
STAGES = {
    "a": "a. speaker + emotion conditioning (w2v-BERT x2, CAMPPlus, ref mel, regulator, emotion vectors)",
    "b": f"b. GPT generation, {CODES} codes at 25 Hz, sampling, 1 beam",
    "c": "c. codec decoder + length regulator",
    "d": f"d. s2mel: {STEPS} flow-matching steps, CFG {CFG_RATE}",
    "e": "e. BigVGAN",
}
ENGINE20_FP32 = {"a": 3.23, "b": 15.19, "c": 0.76, "d": 19.35, "e": 3.03, "total": 41.56, "audio": 3.495}
"""IndexTTS-2 engine fp32, medians of benchmarks/RESULTS.md's `indextts` section (2026-11-24,
load ≈ 1.9 on 2 cores; c there is the GPT forward to latents): NOT measured in this run."""


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
    from wyoming_indextts.export.cli import main

    if not (out / "manifest.json").is_file():
        code = main(["--checkpoints", str(checkpoints), "--out", str(out), "--force"])
        if code != 0:
            raise SystemExit(f"export failed with exit code {code}")
    return out


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


def child_official(checkpoints: Path, threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    from indextts25.infer_v2_5 import IndexTTS2, _audio_key
    from indextts25.utils.tokenizer import lang_to_token

    tts = IndexTTS2(cfg_path=str(checkpoints / "config.yaml"), model_dir=str(checkpoints), device="cpu")
    clip = str(clip_path())
    times: dict[str, float] = {}
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
    return {"times": times, "codes": int(codes.shape[1]), "mel_frames": int(mu.shape[1]), "audio": wav.numel() / 22050}


def child_engine(model_dir: Path, threads: int) -> dict[str, Any]:
    import numpy as np

    from wyoming_indextts.engines.indextts.codec import SemanticDecoder
    from wyoming_indextts.engines.indextts.conditioning import AcousticConditioner, load_mel_settings
    from wyoming_indextts.engines.indextts.gpt import merge_emovec
    from wyoming_indextts.engines.indextts.model import IndexTTSModel
    from wyoming_indextts.engines.indextts.options import IndexTTSOptions
    from wyoming_indextts.engines.indextts.pipeline25 import Pipeline25
    from wyoming_indextts.engines.indextts.preparation import condition_voice25
    from wyoming_indextts.engines.indextts.sampling import Sampler, SamplingOptions
    from wyoming_indextts.engines.indextts.voice import prepare_clip_audio, read_clip

    model = IndexTTSModel.open(model_dir, threads=threads)
    for graph in model.manifest.graphs:
        if not graph.endswith("int8"):
            model.session(graph)
    pipeline = Pipeline25(model, IndexTTSOptions(diffusion_steps=STEPS, cfg_rate=CFG_RATE))
    times: dict[str, float] = {}
    start = time.perf_counter()
    samples, rate = read_clip(clip_path())
    conditioner = AcousticConditioner(model.session, load_mel_settings(model.path))
    voice = condition_voice25(model, conditioner, prepare_clip_audio(samples, rate))
    times["a"] = time.perf_counter() - start
    start = time.perf_counter()
    prefix = pipeline.gpt.conditioning_prefix(voice.speaker_latents, merge_emovec(voice.emovec_speaker, voice.emovec_emotion))
    sampler = Sampler(SamplingOptions(seed=1))
    codes = pipeline.gpt.generate25(prefix, text_ids(), pipeline.gpt.language_id("en"), sampler, CODES, CODES)
    times["b"] = time.perf_counter() - start
    start = time.perf_counter()
    cond = SemanticDecoder(model.session, model.speech.mel_frames_per_code).condition(codes[None, :CODES])
    times["c"] = time.perf_counter() - start
    start = time.perf_counter()
    mu = np.concatenate([voice.prompt_condition, cond], axis=1)
    mel = pipeline.s2mel.sample(mu, voice.ref_mel, voice.style, steps=STEPS, cfg_rate=CFG_RATE, rng=np.random.default_rng(1))
    times["d"] = time.perf_counter() - start
    start = time.perf_counter()
    wav = pipeline.vocoder(mel)
    times["e"] = time.perf_counter() - start
    return {"times": times, "codes": int(codes.size), "mel_frames": int(mu.shape[1]), "audio": wav.size / 22050}


def run_child(kind: str, path: Path, threads: int) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--path", str(path), "--threads", str(threads)],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(official: dict[str, Any], engine: dict[str, Any], threads: int, seconds: float, load: Any) -> str:
    from _report import machine_description, timestamp

    def total(r: dict[str, Any]) -> float:
        return sum(r["times"].values())

    rows = []
    for key, label in STAGES.items():
        rows.append(f"| {label} | {official['times'][key]:.2f} | {engine['times'][key]:.2f} | {ENGINE20_FP32[key]:.2f} |")
    rows.append(f"| **total a–e** | {total(official):.2f} | {total(engine):.2f} | {ENGINE20_FP32['total']:.2f} |")
    per_audio = [total(official) / official["audio"], total(engine) / engine["audio"], ENGINE20_FP32["total"] / ENGINE20_FP32["audio"]]
    rows.append(f"| s per s of audio | {per_audio[0]:.2f} | {per_audio[1]:.2f} | {per_audio[2]:.2f} |")
    vs20 = per_audio[2] / per_audio[1]
    vs_official = total(official) / total(engine)
    held = lambda ok: "held" if ok else "not held"  # noqa: E731
    return "\n".join(
        [
            "## IndexTTS-2.5: official PyTorch vs ONNX Runtime runtime (assumed published sizes, random weights)",
            "",
            f"{timestamp()} · {machine_description()} · {threads} threads each side · one run each.",
            load.summary(),
            "",
            f"Work: {TEXT_TOKENS} text tokens, {engine['codes']} codes at 25 Hz forced, {engine['mel_frames']} mel frames in "
            f"s2mel (5 s prompt + new), {engine['audio']:.3f} s of audio (official: {official['audio']:.3f} s). Sizes are "
            "assumed (module docstring): 2.5's config.yaml is not on this machine.",
            "",
            "| stage (s) | official 2.5 PyTorch, 1 beam | engine 2.5 fp32 | engine IndexTTS-2 fp32 (RESULTS.md `indextts`, 2026-11-24, not this run) |",
            "|---|---|---|---|",
            *rows,
            "",
            f"- engine 2.5 vs official 2.5, like for like: {vs_official:.2f}× (target ≥ 2×: {held(vs_official >= 2)})",
            f"- engine 2.5 vs the IndexTTS-2 fp32 engine, per second of audio: {vs20:.2f}× (target ≥ 2×: {held(vs20 >= 2)}; "
            "the 2.0 row comes from another run on a quieter machine"
            + ("; this run's machine was busy, so this ratio says nothing: re-run on a quiet machine)" if load.busy() else ")"),
            "",
            "Command:",
            "",
            "```sh",
            ".venv/bin/python benchmarks/indextts25_bench.py",
            "```",
            "",
            f"Whole run {seconds:.0f} s (files and export cached in `benchmarks/.work/indextts25/`).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child", choices=("official", "engine"))
    parser.add_argument("--path", type=Path)
    args = parser.parse_args()
    if args.child:
        result = child_official(args.path, args.threads) if args.child == "official" else child_engine(args.path, args.threads)
        print(json.dumps(result))
        return
    from _report import LoadMonitor, write_section

    started = time.perf_counter()
    checkpoints = build_files(WORK / "IndexTTS-2.5")
    model_dir = export(checkpoints, WORK / "model")
    clip_path()
    with LoadMonitor() as load:
        official = run_child("official", checkpoints, args.threads)
        engine = run_child("engine", model_dir, args.threads)
    text = report(official, engine, args.threads, time.perf_counter() - started, load)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
