"""Kokoro-82M: the bundled offline Mandarin voices."""

from .engine import DEFAULT_MANDARIN_VOICE, VOICE_PREFIX, KokoroEngine

__all__ = ["DEFAULT_MANDARIN_VOICE", "VOICE_PREFIX", "KokoroEngine"]
