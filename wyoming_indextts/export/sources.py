"""Where the files the exporter reads come from: one table per model, one row per Hub repository.

`wyoming-indextts setup` downloads exactly the files listed here (nothing else from the
repositories: IndexTeam/IndexTTS-2 also holds a 1.2 GB Qwen emotion model the ONNX runtime
does not use), then passes the folders to `wyoming-indextts export` through `export_option`.
Adding a model is one more `ModelRecipe`; adding a file to a model is one more name in a row.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HubSource:
    """Files of one Hugging Face repository, and how the exporter is pointed at them."""

    key: str
    """Folder name under the download folder; also what progress and errors call it."""
    repo_id: str
    files: tuple[str, ...]
    licence: str
    export_option: str
    """The `wyoming-indextts export` option that receives this source."""
    export_path: str = ""
    """Path inside the folder to pass to `export_option` ("" passes the folder itself)."""
    revision: str = "main"


@dataclass(frozen=True)
class ModelRecipe:
    name: str
    description: str
    sources: tuple[HubSource, ...]


AUXILIARY_SOURCES = (
    HubSource(
        key="w2v-bert-2.0",
        repo_id="facebook/w2v-bert-2.0",
        files=("config.json", "model.safetensors"),
        licence="MIT",
        export_option="--w2v-bert",
    ),
    HubSource(
        key="MaskGCT",
        repo_id="amphion/MaskGCT",
        files=("semantic_codec/model.safetensors",),
        licence="CC-BY-NC-4.0",
        export_option="--semantic-codec",
        export_path="semantic_codec/model.safetensors",
    ),
    HubSource(
        key="campplus",
        repo_id="funasr/campplus",
        files=("campplus_cn_common.bin",),
        licence="Apache-2.0",
        export_option="--campplus",
        export_path="campplus_cn_common.bin",
    ),
    HubSource(
        key="bigvgan_v2_22khz_80band_256x",
        repo_id="nvidia/bigvgan_v2_22khz_80band_256x",
        files=("config.json", "bigvgan_generator.pt"),
        licence="MIT",
        export_option="--bigvgan",
    ),
)

MODELS: dict[str, ModelRecipe] = {
    "indextts2": ModelRecipe(
        name="indextts2",
        description="IndexTTS-2 (IndexTeam/IndexTTS-2) and the four models it builds on",
        sources=(
            HubSource(
                key="IndexTTS-2",
                repo_id="IndexTeam/IndexTTS-2",
                files=(
                    "config.yaml",
                    "gpt.pth",
                    "s2mel.pth",
                    "bpe.model",
                    "wav2vec2bert_stats.pt",
                    "feat1.pt",
                    "feat2.pt",
                ),
                licence="bilibili Index model licence (INDEX_MODEL_LICENSE in the repository)",
                export_option="--checkpoints",
            ),
            *AUXILIARY_SOURCES,
        ),
    ),
    # IndexTTS-2.5: one more entry here once its exporter lands (its checkpoint repository adds
    # codec.pth and a tiktoken tokenizer to the IndexTTS-2 files; same four auxiliary models).
}
DEFAULT_MODEL = "indextts2"
