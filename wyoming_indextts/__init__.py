"""Wyoming TTS server for IndexTTS2 voices, with a cache and a fallback chain."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wyoming-indextts")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
