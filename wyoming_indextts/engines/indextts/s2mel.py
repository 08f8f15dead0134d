"""s2mel on ONNX Runtime: GPT latents + codes -> mel, by flow matching.

Mirrors the s2mel part of `IndexTTS2.infer_generator` and `CFM.inference`/`solve_euler`:

1. `s2mel_front` graph: gpt_layer(latent) + codec vq2emb(codes), length-regulated to
   `int(code_len * mel_frames_per_code)` frames (1.72 for IndexTTS-2, read from the folder);
2. the prompt condition (from the voice) is put in front, giving mu for T = prompt + new frames;
3. Euler steps from noise at t=0 to t=1 in numpy. Each step calls the `s2mel_estimator`
   graph ONCE with the conditional and the unconditional (zero prompt, style and mu) inputs
   stacked as a batch of two, mixed as (1 + cfg) * v_cond - cfg * v_uncond; the prompt
   frames of x are held at zero as the official solver does, so only the new frames are
   stepped (the estimator returns their velocity alone); the result is the new speech only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from wyoming_indextts.engines.indextts.conditioning import (
    AcousticPrompt,
    SessionFor,
    directory_sessions,
    nearest_frame_index,
)
from wyoming_indextts.engines.indextts.format import (
    MEL_FRAMES_PER_CODE,
    S2MEL_ESTIMATOR_GRAPH,
    S2MEL_FRONT_GRAPH,
    SpeechParams,
)

DEFAULT_STEPS = 25
DEFAULT_CFG_RATE = 0.7


def target_mel_frames(code_len: int, per_code: float = MEL_FRAMES_PER_CODE) -> int:
    """`(code_lens * 1.72).long()` as torch computes it (float32 product, truncated)."""
    return int(np.float32(code_len) * np.float32(per_code))


def euler_time_grid(steps: int) -> np.ndarray:
    """`torch.linspace(0, 1, steps + 1)` in float32."""
    return np.linspace(0.0, 1.0, steps + 1, dtype=np.float64).astype(np.float32)


class S2Mel:
    def __init__(
        self,
        session_for: SessionFor,
        estimator_graph: str = S2MEL_ESTIMATOR_GRAPH,
        mel_frames_per_code: float = MEL_FRAMES_PER_CODE,
    ) -> None:
        """`estimator_graph`: the float step or its int8 copy (``s2mel_estimator_int8``);
        `mel_frames_per_code`: the folder's (`SpeechParams`)."""
        self._session_for = session_for
        self._estimator_graph = estimator_graph
        self.mel_frames_per_code = mel_frames_per_code

    @classmethod
    def from_dir(cls, model_dir: Path, threads: int = 0, estimator_graph: str = S2MEL_ESTIMATOR_GRAPH) -> S2Mel:
        params = SpeechParams.read(model_dir)
        return cls(directory_sessions(model_dir, threads), estimator_graph, params.mel_frames_per_code)

    def condition(self, latent: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """latent (1, N, 1280) float32 + codes (1, N) -> cond (1, int(N * mel_frames_per_code), C)."""
        if latent.ndim != 3 or codes.ndim != 2 or latent.shape[1] != codes.shape[1]:
            raise ValueError(f"latent {latent.shape} and codes {codes.shape} must be (1, N, 1280) and (1, N)")
        frames = target_mel_frames(codes.shape[1], self.mel_frames_per_code)
        (cond,) = self._session_for(S2MEL_FRONT_GRAPH).run(
            None,
            {
                "latent": np.ascontiguousarray(latent, dtype=np.float32),
                "codes": np.ascontiguousarray(codes, dtype=np.int64),
                "frame_index": nearest_frame_index(codes.shape[1], frames),
            },
        )
        return cond

    def sample(
        self,
        mu: np.ndarray,
        ref_mel: np.ndarray,
        style: np.ndarray,
        steps: int = DEFAULT_STEPS,
        cfg_rate: float = DEFAULT_CFG_RATE,
        noise: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
        temperature: float = 1.0,
        pause: Callable[[], None] | None = None,
    ) -> np.ndarray:
        """`CFM.inference(mu, ..., ref_mel, style, None, steps, temperature, cfg_rate)` without
        the prompt frames: (1, 80, T - prompt frames).

        `noise` (1, 80, T) replaces the standard normal draw (tests pass torch's noise).
        `pause` is called before each step (a background render waits there for live ones).
        """
        if steps < 1:
            raise ValueError("s2mel needs at least one diffusion step")
        mel_bins = ref_mel.shape[1]
        frames = mu.shape[1]
        prompt_len = ref_mel.shape[2]
        if noise is None:
            rng = rng or np.random.default_rng()
            noise = rng.standard_normal((1, mel_bins, frames), dtype=np.float32)
        if noise.shape != (1, mel_bins, frames):
            raise ValueError(f"noise must have shape {(1, mel_bins, frames)}, got {noise.shape}")
        # Only the new frames move: the solver holds the prompt frames of x at zero, and the
        # estimator returns the velocity of the new frames alone.
        x = (np.asarray(noise[:, :, prompt_len:], dtype=np.float32) * np.float32(temperature)).copy()

        guided = cfg_rate > 0
        batch = 2 if guided else 1
        # Inputs that stay fixed across steps; row 1 (unconditional) keeps zeros.
        prompt_x = np.zeros((batch, mel_bins, frames), dtype=np.float32)
        prompt_x[0, :, :prompt_len] = ref_mel[0, :, :prompt_len]
        styles = np.zeros((batch, style.shape[-1]), dtype=np.float32)
        styles[0] = style[0]
        mus = np.zeros((batch, frames, mu.shape[2]), dtype=np.float32)
        mus[0] = mu[0]
        xs = np.zeros((batch, mel_bins, frames), dtype=np.float32)
        ts = np.empty((batch,), dtype=np.float32)
        target_start = np.array([prompt_len], dtype=np.int64)
        estimator = self._session_for(self._estimator_graph)
        cfg = np.float32(cfg_rate)

        grid = euler_time_grid(steps)
        t = grid[0]
        for step in range(1, steps + 1):
            if pause is not None:
                pause()
            dt = grid[step] - grid[step - 1]
            xs[:, :, prompt_len:] = x[0]
            ts[:] = t
            (velocity,) = estimator.run(
                None,
                {"x": xs, "prompt_x": prompt_x, "t": ts, "style": styles, "mu": mus, "target_start": target_start},
            )
            if guided:
                dphi = (np.float32(1.0) + cfg) * velocity[:1] - cfg * velocity[1:]
            else:
                dphi = velocity
            x = x + dt * dphi
            t = t + dt
        return x

    def generate(
        self,
        latent: np.ndarray,
        codes: np.ndarray,
        prompt: AcousticPrompt,
        steps: int = DEFAULT_STEPS,
        cfg_rate: float = DEFAULT_CFG_RATE,
        noise: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """GPT latent (1, N, 1280) + codes (1, N) -> the new mel (1, 80, int(N * mel_frames_per_code))."""
        cond = self.condition(latent, codes)
        mu = np.concatenate([prompt.prompt_condition, cond], axis=1)
        return self.sample(mu, prompt.ref_mel, prompt.style, steps=steps, cfg_rate=cfg_rate, noise=noise, rng=rng)
