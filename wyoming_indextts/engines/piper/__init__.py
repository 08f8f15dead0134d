"""The bundled English voice (Piper en_US-joe-medium): engine (loading, loudness, the Engine
protocol) and vits_stream (the VITS graph split before its decoder, to stream inside a sentence)."""

from .engine import BUNDLED_VOICE, LIMITER_KNEE, TARGET_RMS, PiperEngine, PiperOptions, soft_limit

__all__ = ["BUNDLED_VOICE", "LIMITER_KNEE", "TARGET_RMS", "PiperEngine", "PiperOptions", "soft_limit"]
