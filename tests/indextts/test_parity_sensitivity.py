"""Before any parity bar is trusted: on the tiny models, every input must move the output.

A parity test compares the runtime with the official code on tiny random models. If a path is
numerically inert there (a conditioning input that hardly changes the mel, a LayerNorm that is
an identity after the official init), a port that drops it still passes. These tests run the
official modules alone and assert that the mel and the waveform react to CFG, content, style,
prompt mel and the emotion vector by far more than the parity bars allow, and that the GPT's
greedy codes react to each LayerNorm's scale and offset (tests/indextts/tiny_*.py make them so).

Measured on the tiny models (SNR of the changed output against the unchanged one, 6 Euler
steps; the parity bars in test_acoustic_parity, test_engine_parity and test_infer_parity are
>= 60 dB, so each of these changes fails them by a wide margin):

    change                                     mel       wave
    CFG rate 0 (no guidance)                   14.9 dB   17.4 dB
    CFG rate 0.5 instead of 0.7                25.7 dB   28.2 dB
    content zeroed (GPT latents and codes)     14.7 dB   19.3 dB
    style zeroed                               25.7 dB   30.2 dB
    prompt mel zeroed                           8.3 dB   11.2 dB
    prompt condition zeroed                    29.3 dB   33.8 dB
    another emotion vector                     36.5 dB   40.2 dB
    other diffusion noise                      -2.2 dB    1.7 dB

Before the tweaks in tiny_acoustic.py the same DiT gave 33-51 dB for CFG, content, style and
prompt mel, and BigVGAN's output for a constant mel was within 21 dB of the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from omegaconf import OmegaConf  # noqa: E402

from tests.indextts.clips import voiced_clip  # noqa: E402
from tests.indextts.conftest import TinyCheckpoints, snr_db  # noqa: E402
from wyoming_indextts.engines.indextts.features import campplus_features  # noqa: E402

pytestmark = pytest.mark.slow

SENSITIVITY_DB = 42.0
"""A changed input must bring the output's SNR against the unchanged output below this: at
least 18 dB (60x in power) outside the parity bars (>= 60 dB, float32 error between ONNX
Runtime and torch), so no change listed here can hide inside them."""

N_CODES = 29
STEPS = 6
CFG_RATE = 0.7
GREEDY_CODES = 16


@dataclass(frozen=True)
class Inputs:
    """One s2mel + BigVGAN call of infer_generator, in the official tensors."""

    latent: torch.Tensor
    codes: torch.Tensor
    prompt_condition: torch.Tensor
    ref_mel: torch.Tensor
    style: torch.Tensor
    noise_seed: int = 1234
    cfg_rate: float = CFG_RATE


@dataclass
class Official:
    gpt: object
    acoustic: object


@pytest.fixture(scope="module")
def official(tiny_checkpoints: TinyCheckpoints) -> Official:
    from wyoming_indextts.export.official_acoustic import load_official_acoustic
    from wyoming_indextts.export.gpt import load_unified_voice

    cfg = OmegaConf.load(tiny_checkpoints.checkpoints / "config.yaml")
    gpt = load_unified_voice(cfg.gpt, tiny_checkpoints.checkpoints / "gpt.pth")
    return Official(gpt, load_official_acoustic(cfg, tiny_checkpoints.acoustic_sources()))


def features(frames: int, seed: int) -> torch.Tensor:
    return torch.randn(1, frames, 1024, generator=torch.Generator().manual_seed(seed))


def emotion_vector(official: Official, spk: torch.Tensor, emo: torch.Tensor) -> torch.Tensor:
    lengths = torch.tensor([spk.shape[-1]])
    with torch.no_grad():
        return official.gpt.merge_emovec(spk, emo, lengths, torch.tensor([emo.shape[-1]]), alpha=1.0)


def gpt_latent(official: Official, spk: torch.Tensor, emo: torch.Tensor, emovec, text, codes) -> torch.Tensor:
    """UnifiedVoice.forward as infer_generator calls it."""
    with torch.no_grad():
        return official.gpt(
            official.gpt.get_conditioning(spk.transpose(1, 2), torch.tensor([spk.shape[-1]])),
            text,
            torch.tensor([text.shape[-1]]),
            codes,
            torch.tensor([codes.shape[-1]]),
            emo,
            cond_mel_lengths=torch.tensor([spk.shape[-1]]),
            emo_cond_mel_lengths=torch.tensor([emo.shape[-1]]),
            emo_vec=emovec,
            use_speed=torch.zeros(1).long(),
        )


@pytest.fixture(scope="module")
def base(official: Official) -> tuple[Inputs, dict]:
    from wyoming_indextts.export import official_package

    official_package()
    from indextts.s2mel.modules.audio import mel_spectrogram

    off = official.acoustic
    generator = torch.Generator().manual_seed(17)
    spk, emo, other_emo = features(83, 1), features(61, 2), features(70, 3)
    text = torch.randint(2, 250, (1, 15), generator=generator, dtype=torch.int32)
    codes = torch.randint(0, 8192, (1, N_CODES), generator=generator)
    clip16 = voiced_clip(2.0, 16000, seed=3)
    with torch.no_grad():
        _, s_ref = off.semantic_codec.quantize(spk)
        ref_mel = mel_spectrogram(
            torch.from_numpy(voiced_clip(2.0, 22050, seed=3))[None],
            n_fft=1024, num_mels=80, sampling_rate=22050, hop_size=256, win_size=1024, fmin=0, fmax=None,
        )  # fmt: skip
        prompt_condition = off.s2mel.models["length_regulator"](
            s_ref, ylens=torch.LongTensor([ref_mel.size(2)]), n_quantizers=3, f0=None
        )[0]
        style = off.campplus(torch.from_numpy(campplus_features(clip16)))
    latent = gpt_latent(official, spk, emo, emotion_vector(official, spk, emo), text, codes)
    other_latent = gpt_latent(official, spk, emo, emotion_vector(official, spk, other_emo), text, codes)
    inputs = Inputs(latent, codes, prompt_condition, ref_mel, style)
    return inputs, {"other_emotion_latent": other_latent}


def render(official: Official, inputs: Inputs) -> tuple[np.ndarray, np.ndarray]:
    """infer_generator's s2mel + BigVGAN for one segment (the official modules)."""
    off = official.acoustic
    s2mel = off.s2mel
    with torch.no_grad():
        latent = s2mel.models["gpt_layer"](inputs.latent)
        s_infer = off.semantic_codec.quantizer.vq2emb(inputs.codes.unsqueeze(1)).transpose(1, 2) + latent
        target = (torch.LongTensor([inputs.codes.shape[-1]]) * 1.72).long()
        cond = s2mel.models["length_regulator"](s_infer, ylens=target, n_quantizers=3, f0=None)[0]
        mu = torch.cat([inputs.prompt_condition, cond], dim=1)
        torch.manual_seed(inputs.noise_seed)
        mel = s2mel.models["cfm"].inference(
            mu, torch.LongTensor([mu.size(1)]), inputs.ref_mel, inputs.style, None, STEPS,
            inference_cfg_rate=inputs.cfg_rate,
        )[:, :, inputs.ref_mel.size(-1) :]  # fmt: skip
        wave = torch.clamp(off.bigvgan(mel).reshape(-1), -1.0, 1.0)
    return mel.numpy(), wave.numpy()


def changes(inputs: Inputs, extra: dict) -> dict[str, Inputs]:
    return {
        "CFG rate 0 (no guidance)": replace(inputs, cfg_rate=0.0),
        "CFG rate 0.5 instead of 0.7": replace(inputs, cfg_rate=0.5),
        "content zeroed (GPT latents and codes)": replace(
            inputs, latent=torch.zeros_like(inputs.latent), codes=torch.zeros_like(inputs.codes)
        ),
        "style zeroed": replace(inputs, style=torch.zeros_like(inputs.style)),
        "prompt mel zeroed": replace(inputs, ref_mel=torch.zeros_like(inputs.ref_mel)),
        "prompt condition zeroed": replace(inputs, prompt_condition=torch.zeros_like(inputs.prompt_condition)),
        "another emotion vector": replace(inputs, latent=extra["other_emotion_latent"]),
        "other diffusion noise": replace(inputs, noise_seed=99),
    }


def test_mel_and_wave_react_to_every_input(official: Official, base: tuple[Inputs, dict]) -> None:
    inputs, extra = base
    mel, wave = render(official, inputs)
    assert np.abs(wave).max() > 1e-3 and np.abs(wave).max() < 1.0  # audible, and not clipped flat
    measured = {}
    for name, changed in changes(inputs, extra).items():
        other_mel, other_wave = render(official, changed)
        measured[name] = (snr_db(other_mel, mel), snr_db(other_wave, wave))
    report = "\n".join(f"{name:42s} mel {m:6.1f} dB  wave {w:6.1f} dB" for name, (m, w) in measured.items())
    inert = [name for name, (m, w) in measured.items() if m > SENSITIVITY_DB or w > SENSITIVITY_DB]
    assert not inert, f"inert on the tiny models (SNR above {SENSITIVITY_DB} dB):\n{report}"


def test_wave_reacts_to_the_mel(official: Official, base: tuple[Inputs, dict]) -> None:
    """BigVGAN's output must follow the mel, not fixed lines: a constant mel or an unrelated
    one must be far from the real one's waveform."""
    mel, wave = render(official, base[0])
    vocoder = official.acoustic.bigvgan
    with torch.no_grad():
        constant = vocoder(torch.full_like(torch.from_numpy(mel), float(mel.mean()))).reshape(-1).numpy()
        shifted = vocoder(torch.from_numpy(np.roll(mel, 1, axis=2))).reshape(-1).numpy()
    assert snr_db(np.clip(constant, -1, 1), wave) < 10.0
    assert snr_db(np.clip(shifted, -1, 1), wave) < 10.0


def core_norms(gpt) -> dict[str, torch.nn.LayerNorm]:
    norms = {}
    for i, block in enumerate(gpt.gpt.h):
        norms[f"h.{i}.ln_1"] = block.ln_1
        norms[f"h.{i}.ln_2"] = block.ln_2
    norms["ln_f"] = gpt.gpt.ln_f
    norms["final_norm"] = gpt.final_norm
    return norms


def test_gpt_codes_react_to_each_norm(official: Official) -> None:
    """Greedy codes with a norm's scale reset to 1 (or its offset to 0) must differ: else a
    dropped or swapped norm in the exported graph would pass the code-identity tests."""
    gpt = official.gpt
    spk, emo = features(83, 1), features(61, 2)
    emovec = emotion_vector(official, spk, emo)
    text = torch.randint(2, 250, (1, 23), generator=torch.Generator().manual_seed(23), dtype=torch.int32)

    def greedy() -> list[int]:
        with torch.no_grad():
            codes, _ = gpt.inference_speech(
                spk, text, emo, cond_lengths=torch.tensor([spk.shape[-1]]), emo_cond_lengths=torch.tensor([emo.shape[-1]]),
                emo_vec=emovec, do_sample=False, num_beams=1, repetition_penalty=10.0, max_generate_length=GREEDY_CODES,
            )  # fmt: skip
        return codes[0].tolist()

    reference = greedy()
    assert len(reference) == GREEDY_CODES
    inert = []
    for name, norm in core_norms(gpt).items():
        for attr, identity in (("weight", 1.0), ("bias", 0.0)):
            param = getattr(norm, attr)
            kept = param.detach().clone()
            with torch.no_grad():
                param.fill_(identity)
            try:
                if greedy() == reference:
                    inert.append(f"{name}.{attr}")
            finally:
                with torch.no_grad():
                    param.copy_(kept)
    assert greedy() == reference  # restored
    assert not inert, f"greedy codes ignore {inert}"
