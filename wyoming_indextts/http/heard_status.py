"""What /health and the page show of the render queue and of who was heard: read from the
ledger (a few indexed rows), in a worker thread by the caller."""

from __future__ import annotations

from ..heard import Share
from ..synthesizer import Synthesizer

SHOWN_ENTRIES = 5
WINDOWS = {"last_24h": 24, "last_7d": 7 * 24}


def queue_status(synthesizer: Synthesizer) -> dict | None:
    queue = synthesizer.queue
    if queue is None:
        return None
    progress = queue.progress
    return {
        "entries": queue.size(),
        "capacity": queue.capacity,
        "rendering": progress.rendering,
        "rendered": progress.rendered,
        "failed": progress.failed,
        "dropped": progress.dropped,
        "next": [{"voice": e.voice, "text": e.text, "asked": e.asked} for e in queue.entries(SHOWN_ENTRIES)],
    }


def heard_status(synthesizer: Synthesizer) -> dict | None:
    """Per voice asked for: the share of sentences heard in it, per window."""
    heard = synthesizer.heard
    if heard is None:
        return None
    voices: dict[str, dict] = {}
    for window, hours in WINDOWS.items():
        for voice, share in heard.shares(hours).items():
            voices.setdefault(voice, {})[window] = _share(share)
    return {"voices": voices}


def _share(share: Share) -> dict:
    return {"in_voice": share.in_voice, "sentences": share.total, "percent": share.percent}
