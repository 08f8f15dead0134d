"""Keep glibc's heap from growing with the renders' large buffers.

glibc serves a block above its mmap threshold with a mapping of its own, given back to the
system when freed; but each time such a block is freed it raises the threshold to that
block's size (up to 32 MiB). ONNX Runtime's arenas hand back regions of tens of MB after every
Kokoro call and every long Piper sentence, so the threshold soon sits at 32 MiB, and from then
on those regions come from the heap, where a freed region in the middle stays with the process.
In the soak (benchmarks/soak.py, 6 min) the free memory glibc kept grew 91 → 167 MiB at
+21 MiB/min, and calling malloc_trim every 10 s did not stop it; with the threshold fixed at
1 MiB it stayed at 14 MiB. A fixed threshold also turns off the raising.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

_LOGGER = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
"""mallopt's parameter number (malloc.h)."""
MMAP_THRESHOLD_BYTES = 1 << 20


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Blocks from `threshold` bytes up are mapped and unmapped on their own, whatever was freed
    before. True when set; False where the C library is not glibc (musl gives large blocks back
    on its own)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    if not mallopt(M_MMAP_THRESHOLD, threshold):
        _LOGGER.debug("mallopt(M_MMAP_THRESHOLD, %d) refused", threshold)
        return False
    return True
