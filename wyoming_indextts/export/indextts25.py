"""`wyoming-indextts export` for an IndexTTS-2.5 checkpoint folder.

A 2.5 folder is told from a 2.0 one by its semantic codec decoder, ``codec.pth`` (2.0 has
none: it reads MaskGCT's codec from elsewhere), or by ``version: 2.5`` in its config.yaml. It
holds config.yaml, gpt.pth, s2mel.pth, codec.pth, the tiktoken vocabulary
(``<name>.tiktoken``), feat1.pt / feat2.pt, wav2vec2bert_stats.pt and usually ``hf_cache/``
with w2v-BERT 2.0, CAMPPlus and BigVGAN (the same models as 2.0; ``--w2v-bert``,
``--campplus`` and ``--bigvgan`` point elsewhere).

The model folder it writes differs from a 2.0 one in: the manifest says
``"model": "indextts-2.5"``; the GPT arrays are
2.5's (language embedding, speaker projection; no speed rows, no speaker graph); the
``codec_decode`` graph replaces ``semantic_codec`` and ``s2mel_front``; the tokenizer is the
``.tiktoken`` file. w2v-BERT, CAMPPlus, the prompt regulator, the diffusion step and BigVGAN
are exported by the same code as for 2.0.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engines.indextts.format import (
    CODEC_DECODE_GRAPH,
    CONFIG_NAME,
    EMO_MATRIX_FILE,
    EMOTION_GRAPH,
    GPT_GRAPH,
    GPT_INT8_GRAPH,
    INDEXTTS_25,
    MAX_PROMPT_SECONDS,
    MAX_PROMPT_SECONDS_FIELD,
    SPK_MATRIX_FILE,
    graph_file,
)

CODEC_FILE = "codec.pth"
HF_CACHE = "hf_cache"


def checkpoints_are_indextts25(checkpoints: Path, cfg: Any) -> bool:
    version = str(cfg.get("version", "")) if hasattr(cfg, "get") else ""
    return (checkpoints / CODEC_FILE).is_file() or version.startswith("2.5")


@dataclass
class Export25Plan:
    checkpoints: Path
    out: Path
    cfg: Any
    gpt_checkpoint: Path
    codec: Path
    tokenizer: Path
    emo_matrix: Path
    spk_matrix: Path
    acoustic: Any | None
    sources: dict[str, Path]
    int8: bool = False


def plan_export25(args: argparse.Namespace, cfg: Any) -> Export25Plan:
    """Check every input of a 2.5 export; raise ExportError naming the first missing one."""
    from .official_acoustic import AcousticSources
    from .cli import ExportError, _cfg_file

    checkpoints: Path = args.checkpoints

    def need(path: Path, what: str) -> Path:
        if not path.exists():
            raise ExportError(f"{path}: missing ({what})")
        return path

    gpt = need(checkpoints / _cfg_file(cfg, "gpt_checkpoint", "gpt.pth"), "GPT checkpoint of IndexTTS-2.5")
    codec = need(checkpoints / CODEC_FILE, "semantic codec decoder of IndexTTS-2.5")
    vocabularies = sorted(checkpoints.glob("*.tiktoken"))
    if not vocabularies:
        raise ExportError(f"{checkpoints}: no *.tiktoken file (the tokenizer of IndexTTS-2.5)")
    spk = need(checkpoints / _cfg_file(cfg, "spk_matrix", "feat1.pt"), "speaker matrix of IndexTTS-2.5")
    emo = need(checkpoints / _cfg_file(cfg, "emo_matrix", "feat2.pt"), "emotion matrix of IndexTTS-2.5")
    sources = {
        "config.yaml": checkpoints / "config.yaml",
        gpt.name: gpt,
        codec.name: codec,
        vocabularies[0].name: vocabularies[0],
        spk.name: spk,
        emo.name: emo,
    }
    acoustic = None
    if not args.gpt_only:
        s2mel = need(checkpoints / _cfg_file(cfg, "s2mel_checkpoint", "s2mel.pth"), "s2mel checkpoint of IndexTTS-2.5")
        stats = need(checkpoints / _cfg_file(cfg, "w2v_stat", "wav2vec2bert_stats.pt"), "w2v-BERT statistics of IndexTTS-2.5")
        cache = checkpoints / HF_CACHE
        acoustic = AcousticSources(
            s2mel_checkpoint=s2mel,
            w2v_stats=stats,
            w2v_bert_dir=args.w2v_bert or cache / "w2v-bert-2.0",
            semantic_codec=None,
            campplus=args.campplus or cache / "campplus_cn_common.bin",
            bigvgan_dir=args.bigvgan or cache / "bigvgan",
        )
        try:
            acoustic.check()
        except FileNotFoundError as err:
            raise ExportError(f"{err} (or pass --w2v-bert/--campplus/--bigvgan)") from err
        sources.update(
            {
                s2mel.name: s2mel,
                stats.name: stats,
                "w2v-bert": acoustic.w2v_bert_dir,
                "campplus": acoustic.campplus,
                "bigvgan": acoustic.bigvgan_dir,
            }
        )
    out: Path = args.out
    if out.exists() and not args.force and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out}: already exists (pass --force to replace it)")
    return Export25Plan(
        checkpoints=checkpoints,
        out=out,
        cfg=cfg,
        gpt_checkpoint=gpt,
        codec=codec,
        tokenizer=vocabularies[0],
        emo_matrix=emo,
        spk_matrix=spk,
        acoustic=acoustic,
        sources=sources,
        int8=bool(getattr(args, "int8", False)),
    )


def run_export25(plan: Export25Plan, progress: bool = True) -> Path:
    """Every step into a temporary folder beside `plan.out`, then moved into place."""
    import torch

    from . import codec25, gpt25
    from . import gpt as gpt_export
    from .cli import _hash_sources, load_or_fail, run_steps, save_matrices
    from .manifest import write_manifest

    out = plan.out
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    state: dict[str, Any] = {"graphs": {}}
    cfg = plan.cfg
    emo_num = [int(n) for n in cfg.get("emo_num", [])]

    def hash_sources() -> None:
        state["source_hashes"] = _hash_sources(plan.sources)

    def load_gpt() -> None:
        torch.set_grad_enabled(False)
        state["gpt"] = load_or_fail(lambda: gpt25.load_unified_voice25(cfg.gpt, plan.gpt_checkpoint), plan.gpt_checkpoint, "GPT")

    def graphs() -> None:
        gpt_export.export_emotion_conditioning(state["gpt"], work)
        gpt_export.export_core(state["gpt"], work)
        names = [EMOTION_GRAPH, GPT_GRAPH]
        if plan.int8:
            gpt_export.quantize_core(work)
            names.append(GPT_INT8_GRAPH)
        state["graphs"].update({name: graph_file(name) for name in names})

    def tables() -> None:
        gpt25.save_runtime_arrays25(state["gpt"], work)
        state["gpt_config"] = gpt25.runtime_config25(cfg.gpt, state["gpt"])
        del state["gpt"]

    def matrices() -> None:
        save_matrices(plan.emo_matrix, plan.spk_matrix, emo_num, state["gpt_config"]["model_dim"], work)
        shutil.copyfile(plan.tokenizer, work / plan.tokenizer.name)

    def codec() -> None:
        decoder = load_or_fail(lambda: codec25.load_codec25(cfg.semantic_codec, plan.codec), plan.codec, "codec")
        codec25.export_codec_decode(decoder, work)
        state["graphs"][CODEC_DECODE_GRAPH] = graph_file(CODEC_DECODE_GRAPH)

    def acoustic() -> None:
        from .acoustic import export_acoustic

        for record in export_acoustic(cfg, plan.acoustic, work):
            state["graphs"][record.name] = record.file

    def estimator_int8() -> None:
        from .acoustic import quantize_estimator

        record = quantize_estimator(work)
        state["graphs"][record.name] = record.file

    def config() -> None:
        gpt_export.write_json(
            work / CONFIG_NAME,
            {
                "gpt": state["gpt_config"],
                "gpt_arrays": dict(gpt25.GPT25_ARRAYS),
                "emo_num": emo_num,
                "emo_matrix": EMO_MATRIX_FILE,
                "spk_matrix": SPK_MATRIX_FILE,
                "tokenizer": plan.tokenizer.name,
                MAX_PROMPT_SECONDS_FIELD: MAX_PROMPT_SECONDS,
                "version": str(cfg.get("version", "")),
                "speaks": plan.acoustic is not None,
            },
        )

    def manifest() -> None:
        write_manifest(
            work,
            state["graphs"],
            {"checkpoints": state["source_hashes"], "gpt_only": plan.acoustic is None, "int8": plan.int8},
            model=INDEXTTS_25,
        )

    steps: list[tuple[str, Callable[[], None]]] = [
        ("hashing sources", hash_sources),
        ("loading GPT", load_gpt),
        ("GPT graphs", graphs),
        ("GPT tables", tables),
        ("matrices and tokenizer", matrices),
    ]
    if plan.acoustic is not None:
        steps += [("codec decoder graph", codec), ("acoustic graphs", acoustic)]
        if plan.int8:
            steps.append(("int8 diffusion graph", estimator_int8))
    steps += [("config", config), ("manifest", manifest)]

    return run_steps(steps, work, out, "export 2.5", progress)
