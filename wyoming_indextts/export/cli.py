"""`wyoming-indextts export`: official IndexTTS-2 checkpoints → an ONNX model folder.

Reads the official IndexTTS-2 folder (config.yaml, gpt.pth, s2mel.pth, bpe.model,
wav2vec2bert_stats.pt, feat1.pt, feat2.pt) and local copies of w2v-BERT 2.0, the MaskGCT
semantic codec, CAMPPlus and BigVGAN v2 22 kHz. Nothing is downloaded. Writes the graphs,
the arrays and files the runtime reads, `config.json` and `manifest.json` into a new folder
(built beside the target and renamed into place at the end, so a failed export never leaves
a half-written model behind).

The command's flags, the plan that checks every source before any work, and the steps (2.5
reuses the runner, loader and checks defined here).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engines.indextts.format import (
    BPE_FILE,
    CONFIG_NAME,
    EMO_MATRIX_FILE,
    EMOTION_GRAPH,
    GPT_GRAPH,
    GPT_INT8_GRAPH,
    MAX_PROMPT_SECONDS,
    MAX_PROMPT_SECONDS_FIELD,
    SPEAKER_GRAPH,
    SPK_MATRIX_FILE,
    graph_file,
)

_LOGGER = logging.getLogger(__name__)


class ExportError(Exception):
    """An input problem, reported as one line naming the file."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wyoming-indextts export",
        description="Export official IndexTTS-2 or IndexTTS-2.5 checkpoints to an ONNX model folder "
        "(nothing is downloaded; a 2.5 folder is recognised by its codec.pth).",
    )
    parser.add_argument(
        "--checkpoints",
        required=True,
        type=Path,
        help="official IndexTTS-2 folder: config.yaml, gpt.pth, s2mel.pth, bpe.model, "
        "wav2vec2bert_stats.pt, feat1.pt, feat2.pt",
    )
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument("--w2v-bert", type=Path, help="local copy of facebook/w2v-bert-2.0 (folder)")
    parser.add_argument(
        "--semantic-codec", type=Path, help="MaskGCT semantic codec weights (semantic_codec/model.safetensors)"
    )
    parser.add_argument("--campplus", type=Path, help="CAMPPlus weights (campplus_cn_common.bin)")
    parser.add_argument("--bigvgan", type=Path, help="local copy of nvidia/bigvgan_v2_22khz_80band_256x (folder)")
    parser.add_argument(
        "--gpt-only",
        action="store_true",
        help="export only the GPT graphs (for tests and GPT work; the folder cannot speak)",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also write int8 copies of the GPT and diffusion graphs (about 3x faster GPT decoding and "
        "2.5x faster diffusion on CPUs with VNNI/AMX, slightly different audio; the server uses them "
        "with --indextts-int8)",
    )
    parser.add_argument("--force", action="store_true", help="replace --out if it already exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="log debug messages and show tracebacks")
    return parser


@dataclass
class ExportPlan:
    checkpoints: Path
    out: Path
    cfg: Any
    gpt_checkpoint: Path
    bpe_model: Path
    emo_matrix: Path
    spk_matrix: Path
    acoustic: Any | None
    sources: dict[str, Path] = field(default_factory=dict)
    int8: bool = False


def _cfg_file(cfg: Any, key: str, default: str) -> str:
    value = cfg.get(key, default) if hasattr(cfg, "get") else default
    return str(value if value is not None else default).strip()


def plan_export(args: argparse.Namespace) -> ExportPlan:
    """Check every input before any work; raise ExportError naming the first missing one."""
    from omegaconf import OmegaConf

    checkpoints: Path = args.checkpoints
    if not checkpoints.is_dir():
        raise ExportError(f"{checkpoints}: checkpoints folder not found (the official IndexTTS-2 folder)")
    config_path = checkpoints / "config.yaml"
    if not config_path.is_file():
        raise ExportError(f"{config_path}: missing (config.yaml of the official IndexTTS-2 folder)")
    try:
        cfg = OmegaConf.load(config_path)
    except Exception as err:  # noqa: BLE001 - yaml/omegaconf raise several types
        raise ExportError(f"{config_path}: unreadable ({str(err).splitlines()[0]})") from err
    from .indextts25 import checkpoints_are_indextts25, plan_export25

    if checkpoints_are_indextts25(checkpoints, cfg):
        return plan_export25(args, cfg)

    def need(path: Path, what: str) -> Path:
        if not path.exists():
            raise ExportError(f"{path}: missing ({what})")
        return path

    gpt = need(checkpoints / _cfg_file(cfg, "gpt_checkpoint", "gpt.pth"), "GPT checkpoint of IndexTTS-2")
    bpe_name = str(cfg.dataset.get("bpe_model", BPE_FILE)).strip() if "dataset" in cfg else BPE_FILE
    bpe = need(checkpoints / bpe_name, "BPE tokenizer of IndexTTS-2")
    spk = need(checkpoints / _cfg_file(cfg, "spk_matrix", "feat1.pt"), "speaker matrix of IndexTTS-2")
    emo = need(checkpoints / _cfg_file(cfg, "emo_matrix", "feat2.pt"), "emotion matrix of IndexTTS-2")
    sources = {"config.yaml": config_path, gpt.name: gpt, bpe.name: bpe, spk.name: spk, emo.name: emo}

    acoustic = None
    if not args.gpt_only:
        s2mel = need(checkpoints / _cfg_file(cfg, "s2mel_checkpoint", "s2mel.pth"), "s2mel checkpoint of IndexTTS-2")
        stats = need(checkpoints / _cfg_file(cfg, "w2v_stat", "wav2vec2bert_stats.pt"), "w2v-BERT statistics of IndexTTS-2")
        for option, what in (
            ("w2v_bert", "--w2v-bert: local copy of facebook/w2v-bert-2.0"),
            ("semantic_codec", "--semantic-codec: MaskGCT semantic_codec/model.safetensors"),
            ("campplus", "--campplus: funasr/campplus campplus_cn_common.bin"),
            ("bigvgan", "--bigvgan: local copy of nvidia/bigvgan_v2_22khz_80band_256x"),
        ):
            value = getattr(args, option)
            if value is None:
                raise ExportError(f"{what} is required (or pass --gpt-only)")
            need(value, what)
        from .official_acoustic import AcousticSources

        acoustic = AcousticSources(
            s2mel_checkpoint=s2mel,
            w2v_stats=stats,
            w2v_bert_dir=args.w2v_bert,
            semantic_codec=args.semantic_codec,
            campplus=args.campplus,
            bigvgan_dir=args.bigvgan,
        )
        try:
            acoustic.check()
        except FileNotFoundError as err:
            raise ExportError(str(err)) from err
        sources.update({s2mel.name: s2mel, stats.name: stats})
        for key, path in (
            ("w2v-bert", args.w2v_bert),
            ("semantic-codec", args.semantic_codec),
            ("campplus", args.campplus),
            ("bigvgan", args.bigvgan),
        ):
            sources[key] = path

    out: Path = args.out
    if out.exists() and not args.force and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out}: already exists (pass --force to replace it)")
    return ExportPlan(
        checkpoints=checkpoints,
        out=out,
        cfg=cfg,
        gpt_checkpoint=gpt,
        bpe_model=bpe,
        emo_matrix=emo,
        spk_matrix=spk,
        acoustic=acoustic,
        sources=sources,
        int8=bool(getattr(args, "int8", False)),
    )


def _hash_sources(sources: dict[str, Path]) -> dict[str, Any]:
    from ..engines.indextts.model import sha256_file

    hashed: dict[str, Any] = {}
    for key, path in sources.items():
        if path.is_dir():
            hashed[key] = {
                p.relative_to(path).as_posix(): sha256_file(p)
                for p in sorted(path.rglob("*"))
                if p.is_file() and not p.name.startswith(".")
            }
        else:
            hashed[key] = sha256_file(path)
    return hashed


def _load_matrix(path: Path):
    import numpy as np
    import torch

    try:
        value = torch.load(path, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - torch.load raises many types
        raise ExportError(f"{path}: unreadable ({str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__})") from err
    if not isinstance(value, torch.Tensor):
        raise ExportError(f"{path}: expected a tensor, found {type(value).__name__}")
    return value.detach().to(torch.float32).numpy().astype(np.float32)


def load_or_fail(load: Callable[[], Any], path: Path, what: str) -> Any:
    """`load()`, or an ExportError naming the file when torch cannot read it as `what`."""
    try:
        return load()
    except Exception as err:  # noqa: BLE001 - torch.load / load_state_dict raise many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"{path}: cannot load it as the {what} of this config.yaml ({first[:200]})") from err


def save_matrices(emo_path: Path, spk_path: Path, emo_num: Sequence[int], model_dim: int, work: Path) -> None:
    """The emotion and speaker matrices, checked against config.yaml, into the model folder."""
    import numpy as np

    emo, spk = _load_matrix(emo_path), _load_matrix(spk_path)
    total = sum(emo_num)
    for path, matrix in ((emo_path, emo), (spk_path, spk)):
        if matrix.ndim != 2 or matrix.shape[0] != total:
            raise ExportError(f"{path}: shape {tuple(matrix.shape)} does not match emo_num (sum {total}) of config.yaml")
    if emo.shape[1] != model_dim:
        raise ExportError(f"{emo_path}: width {emo.shape[1]} is not gpt.model_dim")
    np.save(work / EMO_MATRIX_FILE, emo, allow_pickle=False)
    np.save(work / SPK_MATRIX_FILE, spk, allow_pickle=False)


def run_steps(steps: Sequence[tuple[str, Callable[[], None]]], work: Path, out: Path, desc: str, progress: bool) -> Path:
    """Each step in order with a progress bar; the finished folder replaces `out` at once, and
    a failed or interrupted export leaves `out` as it was (its work folder is removed)."""
    from tqdm import tqdm

    bar = tqdm(steps, desc=desc, unit="step", disable=not progress, file=sys.stderr)
    try:
        for label, step in bar:
            bar.set_postfix_str(label)
            _LOGGER.debug("export step: %s", label)
            step()
        bar.close()
        _replace(work, out)
    except BaseException:
        bar.close()
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def run_export(plan: ExportPlan, progress: bool = True) -> Path:
    """Run every step into a temporary folder beside `plan.out`, then move it into place."""
    from .indextts25 import Export25Plan, run_export25

    if isinstance(plan, Export25Plan):
        return run_export25(plan, progress)
    import torch

    from . import gpt as gpt_export
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
        state["gpt"] = load_or_fail(lambda: gpt_export.load_unified_voice(cfg.gpt, plan.gpt_checkpoint), plan.gpt_checkpoint, "GPT")

    def speaker() -> None:
        gpt_export.export_speaker_conditioning(state["gpt"], work)
        state["graphs"][SPEAKER_GRAPH] = graph_file(SPEAKER_GRAPH)

    def emotion() -> None:
        gpt_export.export_emotion_conditioning(state["gpt"], work)
        state["graphs"][EMOTION_GRAPH] = graph_file(EMOTION_GRAPH)

    def core() -> None:
        gpt_export.export_core(state["gpt"], work)
        state["graphs"][GPT_GRAPH] = graph_file(GPT_GRAPH)

    def core_int8() -> None:
        gpt_export.quantize_core(work)
        state["graphs"][GPT_INT8_GRAPH] = graph_file(GPT_INT8_GRAPH)

    def tables() -> None:
        gpt_export.save_runtime_arrays(state["gpt"], work)
        state["gpt_config"] = gpt_export.runtime_config(cfg.gpt, state["gpt"])
        del state["gpt"]
        gc.collect()  # the model's module graph has cycles: free (unmap) it before the next stage

    def matrices() -> None:
        save_matrices(plan.emo_matrix, plan.spk_matrix, emo_num, state["gpt_config"]["model_dim"], work)

    def tokenizer() -> None:
        shutil.copyfile(plan.bpe_model, work / BPE_FILE)

    def acoustic() -> None:
        from .acoustic import export_acoustic

        def report(message: str) -> None:
            _LOGGER.debug("acoustic: %s", message)

        records = export_acoustic(cfg, plan.acoustic, work, progress=report)
        for record in records:
            state["graphs"][record.name] = record.file

    def estimator_int8() -> None:
        from .acoustic import quantize_estimator

        record = quantize_estimator(work)
        state["graphs"][record.name] = record.file

    def config() -> None:
        from . import gpt as g

        data = {
            "gpt": state["gpt_config"],
            "gpt_arrays": dict(g.GPT_ARRAYS),
            "emo_num": emo_num,
            "emo_matrix": EMO_MATRIX_FILE,
            "spk_matrix": SPK_MATRIX_FILE,
            "bpe_model": BPE_FILE,
            MAX_PROMPT_SECONDS_FIELD: MAX_PROMPT_SECONDS,
            "version": str(cfg.get("version", "")),
            "speaks": plan.acoustic is not None,
        }
        g.write_json(work / CONFIG_NAME, data)

    def manifest() -> None:
        write_manifest(
            work,
            state["graphs"],
            {
                "checkpoints": state["source_hashes"],
                "gpt_only": plan.acoustic is None,
                "int8": plan.int8,
            },
        )

    steps: list[tuple[str, Callable[[], None]]] = [
        ("hashing sources", hash_sources),
        ("loading GPT", load_gpt),
        # The core first: with the GPT memory-mapped, only its weights are in memory while the
        # largest graph is exported; the conditioning encoders' pages come in after it.
        ("GPT graph", core),
        ("speaker conditioning graph", speaker),
        ("emotion conditioning graph", emotion),
        ("GPT tables", tables),
        *([("int8 GPT graph", core_int8)] if plan.int8 else []),  # after the GPT is freed
        ("emotion matrices", matrices),
        ("tokenizer", tokenizer),
    ]
    if plan.acoustic is not None:
        steps.append(("acoustic graphs", acoustic))
        if plan.int8:
            steps.append(("int8 diffusion graph", estimator_int8))
    steps += [("config", config), ("manifest", manifest)]

    return run_steps(steps, work, out, "export", progress)


def _replace(work: Path, out: Path) -> None:
    # Readable by whoever runs the server (onnx writes external data files as 0600).
    for path in work.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(work, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(work, out)
    os.chmod(out, 0o755)


def _quiet_libraries() -> None:
    """transformers warns about GPT-2 config defaults UnifiedVoice never uses; torch.load about
    weights_only. Neither is actionable for someone exporting: keep stderr for our messages."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.debug:
        _quiet_libraries()
    try:
        plan = plan_export(args)
        out = run_export(plan, progress=not args.no_progress)
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        if args.debug:
            raise
        print(
            f"error: {err}; the exporter needs the export extra (pip install 'wyoming-indextts[export]') "
            "and `pip install --no-deps indextts2-inference==2.1.1` (IndexTTS-2.5: also "
            "`pip install --no-deps indextts25-inference==0.2.0`)",
            file=sys.stderr,
        )
        return 2
    print(f"exported {plan.checkpoints} → {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
