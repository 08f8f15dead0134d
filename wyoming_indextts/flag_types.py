"""Argument types for the command line's flags: each turns one flag's text into its value or
raises `argparse.ArgumentTypeError` with what was expected, which argparse prints as the one-line
error."""

from __future__ import annotations

import argparse
from pathlib import Path

from .engines.indextts import EMOTIONS
from .engines.remote import parse_remote_uri
from .prerender import PrerenderList

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def whole_number(text: str) -> int:
    # argparse would name the converter ("invalid positive_int value"): say what was expected.
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def positive_int(text: str) -> int:
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def positive_float(text: str) -> float:
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def emotion(text: str) -> tuple[float, ...]:
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {len(EMOTIONS)} comma-separated numbers, got {text!r}") from None
    if len(weights) != len(EMOTIONS) or any(w < 0 for w in weights):
        raise argparse.ArgumentTypeError(f"expected {len(EMOTIONS)} non-negative weights ({', '.join(EMOTIONS)}), got {text!r}")
    return weights


def remote_uri(text: str) -> str:
    try:
        parse_remote_uri(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def redis_url(text: str) -> str:
    if not text.startswith(REDIS_SCHEMES):
        raise argparse.ArgumentTypeError(f"expected a URL starting with one of {', '.join(REDIS_SCHEMES)}, got {text!r}")
    return text


def deadline(text: str) -> tuple[str | None, float]:
    """`10` sets every engine's deadline; `indextts=20` one engine's."""
    engine, sep, seconds = text.rpartition("=")
    return (engine.strip() if sep else None), positive_float(seconds)


def prerender_list(text: str) -> PrerenderList:
    """`FILE` for the default voice, `grandma=FILE` for one voice."""
    voice, sep, path = text.partition("=")
    if not sep:
        voice, path = "", text
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {path!r}")
    return PrerenderList(voice.strip() or None, Path(path))
