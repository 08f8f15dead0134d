"""`wyoming-indextts setup`: download the official checkpoints and the auxiliary models, verify
them, export the ONNX model folder. One command instead of five downloads and an export.

Layout under `--dir` (default DATA_DIR/models): `downloads/MODEL/SOURCE/…` (the Hub files,
kept so a rerun skips them and a failed export can run again without a download) and
`MODEL/` (the exported folder the server reads with `--indextts-model-dir`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .download import (
    DownloadError,
    bytes_missing,
    check_space,
    endpoint_from,
    fetch,
    human_size,
    is_done,
    plan_downloads,
)
from .sources import DEFAULT_MODEL, MODELS

EXPORT_SPACE_FACTOR = 1.0
"""Room reserved for the export, as a share of the downloads: the float graphs hold most of the
sources' weights (all but w2v-BERT's layers 18-24 and the codec's decoder), so reserving as
much again errs on the safe side (the exact share at the published size was not measured)."""


def build_parser() -> argparse.ArgumentParser:
    from ..__main__ import default_data_dir

    parser = argparse.ArgumentParser(
        prog="wyoming-indextts setup",
        description="Download the official model files from the Hugging Face Hub (resumable, only the files "
        "needed, verified) and export them to the ONNX model folder the server reads.",
    )
    parser.add_argument("--model", choices=sorted(MODELS), default=DEFAULT_MODEL, help="which model (default: %(default)s)")
    parser.add_argument(
        "--dir",
        type=Path,
        default=default_data_dir() / "models",
        help="downloads go to DIR/downloads/MODEL, the exported folder to DIR/MODEL (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="exported model folder (default: DIR/MODEL)")
    parser.add_argument(
        "--hf-endpoint",
        help="Hugging Face Hub or a mirror of it, e.g. https://hf-mirror.com (default: $HF_ENDPOINT or https://huggingface.co)",
    )
    parser.add_argument("--download-only", action="store_true", help="download and verify, do not export")
    parser.add_argument("--int8", action="store_true", help="also export the int8 graphs (see `wyoming-indextts export --help`)")
    parser.add_argument("--force", action="store_true", help="export again even if the model folder is complete")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="log debug messages and show tracebacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="%(message)s")
    try:
        return _setup(args)
    except DownloadError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        if args.debug:
            raise
        print(f"error: {err}; setup needs the export extra (script/setup-export)", file=sys.stderr)
        return 2


def _setup(args: argparse.Namespace) -> int:
    recipe = MODELS[args.model]
    endpoint = endpoint_from(args.hf_endpoint)
    downloads = args.dir / "downloads" / recipe.name
    out: Path = args.out or args.dir / recipe.name
    if args.no_progress:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()

    print(f"{recipe.description}, from {endpoint}:", file=sys.stderr)
    planned = plan_downloads(recipe.sources, downloads, endpoint)
    for item in planned:
        have = item.size - bytes_missing(item)
        note = "verified" if is_done(item) else f"{human_size(have)} here, resumes" if have else ""
        print(f"  {item.label:<60} {human_size(item.size):>9}  {note}", file=sys.stderr)
    total = sum(item.size for item in planned)
    missing = sum(bytes_missing(item) for item in planned)
    print(f"  total {human_size(total)}, {human_size(missing)} to download into {downloads}", file=sys.stderr)
    exporting = not args.download_only and (args.force or not (out / "manifest.json").is_file())
    check_space(planned, downloads, reserve=int(total * EXPORT_SPACE_FACTOR) if exporting else 0)
    for item in planned:
        fetch(item, endpoint)
    print("all files verified", file=sys.stderr)

    if args.download_only:
        return 0
    if not exporting:
        print(f"{out} is already exported (pass --force to export again)", file=sys.stderr)
    else:
        from .cli import main as export_main

        code = export_main(_export_argv(recipe.sources, downloads, out, args))
        if code != 0:
            return code
    print(f"ready: start the server with --indextts-model-dir {out} --voices-dir VOICES_FOLDER")
    return 0


def _export_argv(sources, downloads: Path, out: Path, args: argparse.Namespace) -> list[str]:
    argv = ["--out", str(out), "--force"]
    for source in sources:
        argv += [source.export_option, str(downloads / source.key / source.export_path) if source.export_path else str(downloads / source.key)]
    if args.int8:
        argv.append("--int8")
    if args.no_progress:
        argv.append("--no-progress")
    if args.debug:
        argv.append("--debug")
    return argv
