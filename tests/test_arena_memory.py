"""A bundled voice gives its ONNX Runtime arena memory back after a render, and glibc gives
large freed blocks back to the system (wyoming_indextts/malloc.py). An arena keeps
the high-water mark of its largest run for good: the soak (benchmarks/soak.py) saw the server
grow by hundreds of MB in minutes as Mandarin sentences of new lengths arrived."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from wyoming_indextts.engines.kokoro import KokoroEngine

LONG_MANDARIN = "今天北京晴，最高气温二十五度，最低气温十三度，洗衣机已经洗好了，请及时晾晒衣服，门口有人按门铃，请注意查看。"
KEPT_LIMIT_MIB = 64
"""Without the shrinking run, this sentence leaves the arena holding several hundred MiB."""


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


def _malloc_in_use_mib() -> float:
    """Bytes malloc has handed out and not had back (heap and mmapped chunks): an arena's
    regions are in it while the arena keeps them."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        pytest.skip("needs glibc >= 2.33 (mallinfo2)")
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return (info.uordblks + info.hblkhd) / (1024 * 1024)


def test_a_long_mandarin_sentence_leaves_no_arena_behind():
    kokoro = KokoroEngine.load()  # its own session: one the other tests grew would hide a regression
    voice = kokoro.voices()[0]
    before = _malloc_in_use_mib()
    audio = b"".join(kokoro.synthesize(LONG_MANDARIN, voice, opening=False))
    kept = _malloc_in_use_mib() - before
    assert len(audio) > 24000 * 2 * 5  # several seconds of speech: the decoder really ran long
    assert kept < KEPT_LIMIT_MIB, f"the render left {kept:.0f} MiB in malloc"


_FREED_BLOCK_SCENARIO = """
import ctypes, sys
from wyoming_indextts.malloc import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
mib = 1 << 20
libc.free(libc.malloc(8 * mib))  # raises glibc's own threshold to 8 MiB, unless fixed
block, after = libc.malloc(6 * mib), libc.malloc(2 * mib)  # `after` keeps `block` off the heap's top
before = libc.mallinfo2().fordblks
libc.free(block)
print((libc.mallinfo2().fordblks - before) / mib)
"""


def _free_kept_after_freeing_a_block_between_others(mode: str) -> float:
    """MiB glibc keeps after a 6 MiB block is freed with a live block after it, once an 8 MiB
    block was freed before. In a fresh interpreter: free chunks an earlier test left in this
    process's heap would serve the block whatever the threshold."""
    result = subprocess.run([sys.executable, "-c", _FREED_BLOCK_SCENARIO, mode], capture_output=True, text=True, check=True)
    return float(result.stdout)


def test_large_blocks_freed_go_back_to_the_system_not_to_the_heap():
    _malloc_in_use_mib()  # skips where there is no glibc
    assert _free_kept_after_freeing_a_block_between_others("dynamic") >= 5  # the growth the fix is for
    kept = _free_kept_after_freeing_a_block_between_others("fixed")
    assert kept < 1, f"glibc kept {kept:.1f} MiB of a freed 6 MiB block"
