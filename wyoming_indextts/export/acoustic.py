"""Export IndexTTS2's acoustic side (everything but the GPT) from the official files to ONNX.

Sources (the official layout, all local, nothing is downloaded):

- `s2mel.pth` (length regulator, flow-matching DiT estimator, `gpt_layer`),
- `wav2vec2bert_stats.pt` (mean/var of w2v-BERT hidden layer 17),
- a local `facebook/w2v-bert-2.0` folder (read with transformers `Wav2Vec2BertModel`),
- the MaskGCT semantic codec `model.safetensors`,
- CAMPPlus `campplus_cn_common.bin`,
- a BigVGAN folder (`config.json` + `bigvgan_generator.pt`), exported on its torch path
  (never the CUDA activation kernel).

Why the graphs are split as they are:

- `w2v_bert` stops at hidden layer 17 and applies the stats normalisation inside the graph:
  layers 18-24 are never read, so they are not exported (411 M of 580 M parameters remain).
- `semantic_codec` only holds the codec encoder + quantizer (`quantize`): the decoder is never
  used at inference time.
- `campplus` is its own graph: it reads Kaldi fbank features, not w2v-BERT features.
- The length regulator's nearest-neighbour resize needs a target length only known at run
  time. Instead of tracing `F.interpolate(size=...)` (the tracer would freeze the size), the
  runtime computes the source frame of every output frame in numpy
  (`engines.indextts.conditioning.nearest_frame_index`, PyTorch's rule) and the graphs take it as `frame_index`.
  `prompt_regulator` is used once per voice (S_ref -> prompt_condition); `s2mel_front`
  (gpt_layer + codec vq2emb + latent, then the regulator) once per sentence.
- `s2mel_estimator` is ONE Euler step of the DiT: the loop (25 steps by default) and the
  classifier-free guidance mix live in numpy, so steps and CFG rate are run-time choices and
  the graph has no control flow. Conditional and unconditional inputs are batched (batch 2)
  so each step is a single session call. The attention mask is dropped: in inference it is
  always all ones (x_lens == T). The step returns the velocity of the new frames only and
  runs the (local) wavenet tail on them plus its receptive margin: see `EstimatorStep`.
- `bigvgan` is the vocoder alone (mel -> waveform). Its anti-aliased activations work on
  the two phases of the 2x signal with constant filters (see `_AntiAliasActivation`): same
  numbers, no depthwise transposed convolution (slow in ONNX Runtime) and no interleaving;
  BigVGAN then runs as fast in ORT as in torch.

Weight norm is removed before export so the graphs hold plain weights; the wavenet's
reflect-padded convolutions are replaced by fixed-padding MatMul equivalents, so no shape
arithmetic gets frozen into the trace and the int8 copy (`--int8`) quantises them. Every
graph is exported with dynamic time axes and checked by the parity tests at lengths
different from the export example.

The official modules are built by `export.official_acoustic`. Over 500 lines: one concern (the
acoustic graphs), a short wrapper per graph and the export that uses them.
"""

from __future__ import annotations

import gc
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wyoming_indextts.engines.indextts.format import (
    ACOUSTIC_PARAMS_FILE,
    BIGVGAN_GRAPH,
    CAMPPLUS_GRAPH,
    HOP_LENGTH_FIELD,
    MEL_FIELD,
    MEL_FRAMES_PER_CODE,
    MEL_FRAMES_PER_CODE_FIELD,
    OUTPUT_SAMPLE_RATE_FIELD,
    PROMPT_REGULATOR_GRAPH,
    S2MEL_ESTIMATOR_GRAPH,
    S2MEL_ESTIMATOR_INT8_GRAPH,
    S2MEL_FRONT_GRAPH,
    SEMANTIC_CODEC_GRAPH,
    SEMANTIC_SAMPLE_RATE,
    SEMANTIC_SAMPLE_RATE_FIELD,
    W2V_BERT_GRAPH,
    W2V_LAYER_FIELD,
    graph_file,
)
from wyoming_indextts.export import official_package
from wyoming_indextts.export.official_acoustic import (
    AcousticSources,
    load_bigvgan,
    load_campplus,
    load_s2mel,
    load_semantic_codec,
    load_semantic_model,
)

log = logging.getLogger(__name__)

W2V_LAYER = 17
"""IndexTTS2 reads `hidden_states[17]` of w2v-BERT 2.0: the output of its 17th layer."""

OPSET = 17

ProgressFn = Callable[[str], None]

ESTIMATOR_INPUTS = ("x", "prompt_x", "t", "style", "mu", "target_start")
ESTIMATOR_OUTPUTS = ("velocity",)


@dataclass(frozen=True)
class GraphRecord:
    """One exported graph, for the manifest."""

    name: str
    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "inputs": list(self.inputs), "outputs": list(self.outputs)}


# --------------------------------------------------------------------------------------------
# Export wrappers: each calls the official submodules; only glue lives here.


class W2vBertLayer17(nn.Module):
    """Feature projection + the first 17 conformer layers + stats normalisation."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        if len(model.encoder.layers) < W2V_LAYER:
            raise ValueError(
                f"w2v-BERT has {len(model.encoder.layers)} layers; IndexTTS2 reads layer {W2V_LAYER}. "
                "Use the facebook/w2v-bert-2.0 checkpoint."
            )
        if model.encoder.embed_positions is not None:
            raise ValueError("only w2v-BERT with relative_key position embeddings (w2v-bert-2.0) is supported")
        # Eager attention: plain MatMul/Softmax, with the relative-key bias added before softmax.
        model.config._attn_implementation = "eager"
        self.feature_projection = model.feature_projection
        self.layers = nn.ModuleList(model.encoder.layers[:W2V_LAYER])
        self.register_buffer("mean", mean.reshape(1, 1, -1).clone())
        self.register_buffer("std", std.reshape(1, 1, -1).clone())

    def forward(self, input_features: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.feature_projection(input_features)
        keep = attention_mask.unsqueeze(-1).bool()
        hidden = hidden.masked_fill(~keep, 0.0)
        additive = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=additive, conv_attention_mask=attention_mask)
        return (hidden - self.mean) / self.std


class CodecQuantize(nn.Module):
    """Semantic codec encoder + quantizer: normalised w2v-BERT features -> codes, S_ref."""

    def __init__(self, codec: nn.Module) -> None:
        super().__init__()
        self.codec = codec

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes, s_ref = self.codec.quantize(feat)
        return codes, s_ref


class CampPlusStyle(nn.Module):
    def __init__(self, campplus: nn.Module) -> None:
        super().__init__()
        self.campplus = campplus

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        return self.campplus(fbank)


def _check_regulator(regulator: nn.Module) -> None:
    if regulator.is_discrete or hasattr(regulator, "vq") or not regulator.interpolate:
        raise ValueError(
            "s2mel length_regulator must be continuous, interpolating and without vector_quantize "
            "(IndexTTS2 config); this checkpoint is not supported"
        )


def _regulate(regulator: nn.Module, content: torch.Tensor, frame_index: torch.Tensor) -> torch.Tensor:
    """InterpolateRegulator.forward with the nearest resize given as gathered frames."""
    x = regulator.content_in_proj(content)
    x = torch.index_select(x, 1, frame_index).transpose(1, 2)
    if regulator.f0_condition:
        x = x + regulator.f0_mask.unsqueeze(-1)
    return regulator.model(x).transpose(1, 2)


class PromptRegulator(nn.Module):
    """S_ref (1, T, 1024) + frame_index (L) -> prompt_condition (1, L, C)."""

    def __init__(self, regulator: nn.Module) -> None:
        super().__init__()
        _check_regulator(regulator)
        self.regulator = regulator

    def forward(self, s_ref: torch.Tensor, frame_index: torch.Tensor) -> torch.Tensor:
        return _regulate(self.regulator, s_ref, frame_index)


class S2MelFront(nn.Module):
    """GPT latent + codes -> gpt_layer + codec vq2emb -> length regulator -> cond (1, L, C)."""

    def __init__(self, gpt_layer: nn.Module, codec: nn.Module, regulator: nn.Module) -> None:
        super().__init__()
        _check_regulator(regulator)
        self.gpt_layer = gpt_layer
        self.quantizer = codec.quantizer
        self.regulator = regulator

    def forward(self, latent: torch.Tensor, codes: torch.Tensor, frame_index: torch.Tensor) -> torch.Tensor:
        latent = self.gpt_layer(latent)
        s_infer = self.quantizer.vq2emb(codes.unsqueeze(1)).transpose(1, 2) + latent
        return _regulate(self.regulator, s_infer, frame_index)


class _SConvAsMatMul(nn.Module):
    """SConv1d (stride 1, non-causal, reflect padding) with its padding fixed at construction
    time, computed as one MatMul over the k shifted copies of the padded input. Same numbers
    as the convolution.

    The reason is int8: ONNX Runtime's dynamic quantiser turns a MatMul with constant weights
    into an int8 GEMM (VNNI/AMX), while its int8 Conv is slower than its float Conv. For the
    diffusion wavenet (512 channels, a few hundred frames) the float MatMul form takes the
    same time as Conv. Not used for BigVGAN: on its long, narrower signals the column copies
    cost more than they save (3.7 -> 4.9 s float, 4.4 s int8, measured at full size).
    """

    def __init__(self, conv: nn.Conv1d, left: int, right: int) -> None:
        super().__init__()
        if conv.groups != 1 or conv.stride[0] != 1:
            raise ValueError("only stride-1, ungrouped SConv1d layers are supported")
        self.left = left
        self.right = right
        self.kernel = conv.kernel_size[0]
        self.dilation = conv.dilation[0]
        out_channels = conv.out_channels
        weight = conv.weight.detach()  # (out, in, k) -> (k * in, out), row j * in + c = tap j of channel c
        self.register_buffer("matrix", weight.permute(2, 1, 0).reshape(-1, out_channels).contiguous().clone())
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(out_channels)
        self.register_buffer("bias", bias.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.left or self.right:
            x = nn.functional.pad(x, (self.left, self.right), mode="reflect")
        span = (self.kernel - 1) * self.dilation
        taps = [x[:, :, j * self.dilation : (j * self.dilation - span) or None] for j in range(self.kernel)]
        columns = torch.cat(taps, dim=1) if len(taps) > 1 else taps[0]  # (B, k * in, T)
        y = torch.matmul(columns.transpose(1, 2), self.matrix) + self.bias  # (B, T, out)
        return y.transpose(1, 2)


def _freeze_sconv(module: nn.Module) -> None:
    """SConv1d (reflect padding computed from the input at run time) -> fixed padding."""
    official_package()
    from indextts.s2mel.modules.encodec import SConv1d

    for name, child in list(module.named_children()):
        if isinstance(child, SConv1d):
            conv = child.conv.conv
            if conv.stride[0] != 1 or child.causal or not isinstance(child.conv.norm, nn.Identity):
                raise ValueError("only stride-1 non-causal SConv1d layers with weight norm are supported")
            total = (conv.kernel_size[0] - 1) * conv.dilation[0]
            right = total // 2
            setattr(module, name, _SConvAsMatMul(conv, total - right, right))
        else:
            _freeze_sconv(child)


def _remove_weight_norms(module: nn.Module) -> None:
    for sub in module.modules():
        if hasattr(sub, "weight_g") and hasattr(sub, "weight_v"):
            torch.nn.utils.remove_weight_norm(sub)


class EstimatorStep(nn.Module):
    """One DiT velocity evaluation, as `DiT.forward` in inference with x_lens == T.

    x, prompt_x: (B, 80, T); t: (B,); style: (B, 192); mu: (B, T, C); target_start: (1,)
    -> velocity (B, 80, T - target_start), the velocity of the new frames only.

    The solver zeroes the prompt frames after every step, so their velocity is never read.
    The transformer must still see every frame (its attention is global), but the wavenet
    tail is local: a frame's output depends only on `receptive_margin` frames to either side.
    So the tail runs on the new frames plus that margin, which is exact and saves the
    tail's work on the prompt (the 5 s reference is ~60 % of the frames of a short sentence).
    """

    def __init__(self, dit: nn.Module) -> None:
        super().__init__()
        if dit.time_as_token or dit.style_as_token or dit.final_layer_type != "wavenet":
            raise ValueError("only the IndexTTS2 DiT layout (wavenet final layer, no time/style tokens) is supported")
        if dit.is_causal:
            raise ValueError("causal DiT is not supported")
        _remove_weight_norms(dit)
        _freeze_sconv(dit)
        self.dit = dit
        tr = dit.transformer
        self.register_buffer("freqs_cis", tr.freqs_cis.float().clone())
        self.emit_skip = list(tr.layers_emit_skip) if tr.uvit_skip_connection else []
        self.receive_skip = list(tr.layers_receive_skip) if tr.uvit_skip_connection else []
        self.receptive_margin = _left_receptive_field(dit.wavenet)

    def forward(
        self,
        x: torch.Tensor,
        prompt_x: torch.Tensor,
        t: torch.Tensor,
        style: torch.Tensor,
        mu: torch.Tensor,
        target_start: torch.Tensor,
    ) -> torch.Tensor:
        dit = self.dit
        frames = x.shape[2]
        t1 = dit.t_embedder(t)
        cond = dit.cond_projection(mu)
        x = x.transpose(1, 2)
        prompt_x = prompt_x.transpose(1, 2)
        x_in = torch.cat([x, prompt_x, cond], dim=-1)
        if dit.transformer_style_condition:
            x_in = torch.cat([x_in, style[:, None, :].expand(-1, frames, -1)], dim=-1)
        h = dit.cond_x_merge_linear(x_in)

        tr = dit.transformer
        freqs_cis = self.freqs_cis[:frames]
        c = t1.unsqueeze(1)
        skips: list[torch.Tensor] = []
        for i, layer in enumerate(tr.layers):
            skip_in = skips.pop(-1) if i in self.receive_skip else None
            # mask=None: full (non-causal) attention, exactly what an all-ones mask gives.
            h = layer(h, c, None, freqs_cis, None, None, None, None, skip_in)
            if i in self.emit_skip:
                skips.append(h)
        # From here on every operation is per frame or the local wavenet: keep the new frames
        # and the margin the wavenet's convolutions read to their left.
        keep_from = torch.clamp(target_start[0] - self.receptive_margin, min=0)
        h = h[:, keep_from:]
        x = x[:, keep_from:]
        x_res = tr.norm(h, c)

        if dit.long_skip_connection:
            x_res = dit.skip_linear(torch.cat([x_res, x], dim=-1))
        out = dit.conv1(x_res).transpose(1, 2)
        t2 = dit.t_embedder2(t)
        ones = torch.ones_like(out[:, :1, :])
        out = dit.wavenet(out, ones, g=t2.unsqueeze(2)).transpose(1, 2) + dit.res_projection(x_res)
        out = dit.final_layer(out, t1).transpose(1, 2)
        return dit.conv2(out)[:, :, target_start[0] - keep_from :]


def _left_receptive_field(wavenet: nn.Module) -> int:
    """Frames to the left that one output frame of the (frozen) wavenet depends on."""
    margin = 0
    for layer in wavenet.in_layers:
        if not isinstance(layer, _SConvAsMatMul):
            raise ValueError("the wavenet's convolutions must be frozen before measuring their reach")
        margin += layer.left
    return margin


class _AntiAliasActivation(nn.Module):
    """BigVGAN's torch `Activation1d` (2x upsample, snake, 2x downsample), computed on the
    two phases of the 2x signal, never interleaving them. Same numbers (to float rounding).

    The official module upsamples with a depthwise transposed convolution, which ONNX Runtime
    runs slowly, and expands its (1, 1, K) filter at every call, which the exporter cannot
    turn into a grouped convolution of unknown shape. Here: phase q of the upsampled signal is
    a K/2-tap depthwise correlation of the replicate-padded input (taps of one parity); the
    snake is elementwise, so it runs on each phase; the stride-2 low-pass reads one phase with
    its even taps and the other with its odd ones, and adds them. Against interleaving the
    phases (a transpose of the whole 2x signal per activation): BigVGAN 3.9 -> 3.0 s at full
    size, 2 cores, level with torch.
    """

    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        up, low = activation.upsample, activation.downsample.lowpass
        channels = activation.act.in_features
        k_up, k_down = up.kernel_size, low.kernel_size
        if up.ratio != 2 or up.stride != 2 or low.stride != 2 or k_up % 2 or k_down % 2:
            raise ValueError("unexpected BigVGAN anti-alias filters (expected 2x, even kernels)")
        if not low.padding or low.padding_mode != "replicate":
            raise ValueError("unexpected BigVGAN low-pass padding")
        self.act = activation.act
        f = up.filter.reshape(-1)
        h = low.filter.reshape(-1)
        taps_up = k_up // 2
        # Upsampling: phase q of the 2x signal is a K/2-tap correlation of the replicate-padded input.
        self.up_pads = []
        up_filters = []
        for q in (0, 1):
            j0 = -((k_up - 1 - q - up.pad_left) // 2)  # ceil((q + pad_left - K + 1) / 2)
            idx = [q + up.pad_left - 2 * (j0 + a) for a in range(taps_up)]
            left = up.pad - j0
            right = taps_up - 1 - left
            if left < 0 or right < 0 or min(idx) < 0 or max(idx) >= k_up:
                raise ValueError("unexpected BigVGAN upsampling geometry")
            self.up_pads.append((left, right))
            up_filters.append((up.ratio * f[idx]).reshape(1, 1, -1).repeat(channels, 1, 1))
        self.register_buffer("up_filter_0", up_filters[0].clone())
        self.register_buffer("up_filter_1", up_filters[1].clone())
        # Downsampling: output n reads phase q at n + (k - pad_left - q) / 2 for taps k of parity q + pad_left.
        self.down_pads = []
        down_filters = []
        for q in (0, 1):
            ks = [k for k in range(k_down) if (k - low.pad_left - q) % 2 == 0]
            offsets = [(k - low.pad_left - q) // 2 for k in ks]
            self.down_pads.append((-offsets[0], offsets[-1]))
            down_filters.append(h[ks].reshape(1, 1, -1).repeat(channels, 1, 1))
        self.register_buffer("down_filter_0", down_filters[0].clone())
        self.register_buffer("down_filter_1", down_filters[1].clone())
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.channels
        phases = []
        for (left, right), weight in zip(self.up_pads, (self.up_filter_0, self.up_filter_1)):
            padded = nn.functional.pad(x, (left, right), mode="replicate")
            phases.append(self.act(nn.functional.conv1d(padded, weight, groups=c)))
        # The low-pass pads the 2x signal (even length) by repeating its first sample, which is
        # phase 0's first, and its last, which is phase 1's last.
        first, last = phases[0][..., :1], phases[1][..., -1:]
        out = None
        for phase, (left, right), weight in zip(phases, self.down_pads, (self.down_filter_0, self.down_filter_1)):
            parts = [first.expand(-1, -1, left)] if left else []
            parts.append(phase)
            if right:
                parts.append(last.expand(-1, -1, right))
            y = nn.functional.conv1d(torch.cat(parts, dim=-1), weight, groups=c)
            out = y if out is None else out + y
        return out


def _static_activations(module: nn.Module) -> None:
    official_package()
    from indextts.s2mel.modules.bigvgan.alias_free_activation.torch.act import Activation1d

    for name, child in list(module.named_children()):
        if isinstance(child, Activation1d):
            setattr(module, name, _AntiAliasActivation(child))
        else:
            _static_activations(child)


class VocoderGraph(nn.Module):
    def __init__(self, vocoder: nn.Module) -> None:
        super().__init__()
        _static_activations(vocoder)
        self.vocoder = vocoder

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.vocoder(mel)


# --------------------------------------------------------------------------------------------


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: Sequence[str],
    outputs: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of dynamo, but it is mature, fast and
        # produces plain graphs for these models; its warnings are noise here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )


def _mel_params(cfg: Any) -> dict[str, Any]:
    pre = cfg.s2mel.preprocess_params
    spect = pre.spect_params
    fmax = spect.get("fmax", "None")
    return {
        "sampling_rate": int(pre.sr),
        "n_fft": int(spect.n_fft),
        "win_length": int(spect.win_length),
        "hop_length": int(spect.hop_length),
        "n_mels": int(spect.n_mels),
        "fmin": float(spect.get("fmin", 0)),
        # infer_v2: fmax "None" -> None (Nyquist), anything else -> 8000
        "fmax": None if fmax in (None, "None") else 8000.0,
    }


def export_acoustic(
    cfg: Any, paths: AcousticSources, out_dir: Path, progress: ProgressFn | None = None
) -> list[GraphRecord]:
    """Export every acoustic graph into `out_dir`, plus `acoustic.json`; return the records.

    `cfg` is the model's config.yaml loaded with OmegaConf.
    """
    say = progress or (lambda message: log.info("%s", message))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths.check()
    records: list[GraphRecord] = []

    def export(
        name: str,
        module: nn.Module,
        args: tuple[torch.Tensor, ...],
        inputs: Sequence[str],
        outputs: Sequence[str],
        dynamic_axes: dict[str, dict[int, str]],
    ) -> None:
        say(f"exporting {name}")
        file = graph_file(name)
        _export(module, args, out_dir / file, inputs, outputs, dynamic_axes)
        records.append(GraphRecord(name, file, tuple(inputs), tuple(outputs)))

    # One official module in memory at a time, freed after its graphs (peak memory: an 8 GB
    # machine must be able to export; all of them at once took 8.2 GB at the published size).
    frames = 37
    say("loading w2v-BERT")
    w2v = W2vBertLayer17(*load_semantic_model(paths))  # holds layers 1-17 only; 18-24 are freed here
    gc.collect()
    export(
        W2V_BERT_GRAPH,
        w2v,
        (torch.randn(1, frames, 160), torch.ones(1, frames, dtype=torch.int64)),
        ("input_features", "attention_mask"),
        ("spk_cond_emb",),
        {"input_features": {1: "frames"}, "attention_mask": {1: "frames"}, "spk_cond_emb": {1: "frames"}},
    )
    del w2v
    gc.collect()
    # 2.5 (no MaskGCT codec) regulates w2v-BERT features directly and has no gpt_layer: it
    # needs neither `semantic_codec` nor `s2mel_front` (export.codec25 writes its decoder).
    with_codec = paths.semantic_codec is not None
    codec = None
    if with_codec:
        say("loading the semantic codec")
        codec = load_semantic_codec(cfg, paths)
        export(
            SEMANTIC_CODEC_GRAPH,
            CodecQuantize(codec),
            (torch.randn(1, frames, 1024),),
            ("spk_cond_emb",),
            ("codes", "s_ref"),
            {"spk_cond_emb": {1: "frames"}, "codes": {1: "frames"}, "s_ref": {1: "frames"}},
        )
    say("loading CAMPPlus")
    export(
        CAMPPLUS_GRAPH,
        CampPlusStyle(load_campplus(paths)),
        (torch.randn(1, 211, 80),),
        ("fbank",),
        ("style",),
        {"fbank": {1: "frames"}},
    )
    gc.collect()
    say("loading s2mel")
    s2mel = load_s2mel(cfg, paths)
    regulator = s2mel.models["length_regulator"]
    index = torch.arange(frames).repeat_interleave(2)[: 2 * frames - 3]
    export(
        PROMPT_REGULATOR_GRAPH,
        PromptRegulator(regulator),
        (torch.randn(1, frames, 1024), index),
        ("s_ref", "frame_index"),
        ("prompt_condition",),
        {"s_ref": {1: "frames"}, "frame_index": {0: "mel_frames"}, "prompt_condition": {1: "mel_frames"}},
    )
    if with_codec:
        export(
            S2MEL_FRONT_GRAPH,
            S2MelFront(s2mel.models["gpt_layer"], codec, regulator),
            (torch.randn(1, frames, 1280), torch.randint(0, 1000, (1, frames)), index),
            ("latent", "codes", "frame_index"),
            ("cond",),
            {
                "latent": {1: "codes"},
                "codes": {1: "codes"},
                "frame_index": {0: "mel_frames"},
                "cond": {1: "mel_frames"},
            },
        )
    del codec, regulator
    estimator = EstimatorStep(s2mel.models["cfm"].estimator)
    content_dim = s2mel.models["cfm"].estimator.cond_projection.in_features
    mel_bins = s2mel.models["cfm"].estimator.in_channels
    mel_frames = 53
    export(
        S2MEL_ESTIMATOR_GRAPH,
        estimator,
        (
            torch.randn(2, mel_bins, mel_frames),
            torch.randn(2, mel_bins, mel_frames),
            torch.rand(2),
            torch.randn(2, 192),
            torch.randn(2, mel_frames, content_dim),
            torch.tensor([31]),
        ),
        ESTIMATOR_INPUTS,
        ESTIMATOR_OUTPUTS,
        {
            "x": {0: "batch", 2: "mel_frames"},
            "prompt_x": {0: "batch", 2: "mel_frames"},
            "t": {0: "batch"},
            "style": {0: "batch"},
            "mu": {0: "batch", 1: "mel_frames"},
            "velocity": {0: "batch", 2: "new_frames"},
        },
    )
    del s2mel, estimator
    gc.collect()
    say("loading BigVGAN")
    vocoder = load_bigvgan(paths)
    export(
        BIGVGAN_GRAPH,
        VocoderGraph(vocoder),
        (torch.randn(1, mel_bins, 23),),
        ("mel",),
        ("wav",),
        {"mel": {2: "mel_frames"}, "wav": {2: "samples"}},
    )

    params = {
        MEL_FIELD: _mel_params(cfg),
        SEMANTIC_SAMPLE_RATE_FIELD: SEMANTIC_SAMPLE_RATE,
        OUTPUT_SAMPLE_RATE_FIELD: int(vocoder.h.sampling_rate),
        HOP_LENGTH_FIELD: int(vocoder.h.hop_size),
        MEL_FRAMES_PER_CODE_FIELD: MEL_FRAMES_PER_CODE,
        W2V_LAYER_FIELD: W2V_LAYER,
    }
    (out_dir / ACOUSTIC_PARAMS_FILE).write_text(json.dumps(params, indent=2) + "\n")
    say("acoustic export done")
    return records


def quantize_estimator(out_dir: Path) -> GraphRecord:
    """``s2mel_estimator_int8.onnx``: the diffusion step with int8 MatMul weights (export.int8).

    The step is compute-bound and runs 25 times per sentence, so this is the largest single
    saving in synthesis; what it saves and how close it stays to float are measured in
    benchmarks/RESULTS.md (`indextts`, `indextts25`). Opt-in, with the int8 GPT
    (``--indextts-int8``).
    """
    from .int8 import quantize_matmul_weights

    file = graph_file(S2MEL_ESTIMATOR_INT8_GRAPH)
    quantize_matmul_weights(Path(out_dir) / graph_file(S2MEL_ESTIMATOR_GRAPH), Path(out_dir) / file)
    return GraphRecord(S2MEL_ESTIMATOR_INT8_GRAPH, file, ESTIMATOR_INPUTS, ESTIMATOR_OUTPUTS)


__all__ = ["GraphRecord", "export_acoustic", "quantize_estimator"]
