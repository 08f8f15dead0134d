"""The server with a memory probe, for benchmarks/soak.py: `python benchmarks/_memory_probe.py
ARGS` runs `python -m wyoming_indextts ARGS` and answers SIGUSR2 by appending one JSON line to
the file named by $MEMORY_PROBE_FILE: glibc's view of the heap (bytes in use, free bytes its
arenas keep, mmapped chunks, number of arenas), pymalloc's and, when tracemalloc runs
(PYTHONTRACEMALLOC=N), the bytes Python objects hold and the allocation sites that grew most
since the first probe. Tells a leak (bytes in use grow) from allocator growth (free bytes
kept grow) from memory outside malloc (neither grows, RSS does: ONNX Runtime mappings,
pymalloc arenas).

With $MEMORY_PROBE_TRIM set, each probe then calls malloc_trim(0) and reports RSS before and
after: what glibc gives back when asked. With $MEMORY_PROBE_PIPER_SHRINK set, Piper gives its
ONNX Runtime arena back after every sentence, not only after those over 12 s: is its arena what
grows? Both only for an investigation: they change what is measured.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import runpy
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from types import FrameType

_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
_TOP_SITES = 15


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


_LIBC.mallinfo2.restype = _MallInfo2
_LIBC.open_memstream.restype = ctypes.c_void_p
_LIBC.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
_LIBC.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
_LIBC.fclose.argtypes = [ctypes.c_void_p]
_LIBC.free.argtypes = [ctypes.c_void_p]

_first_sites: dict[str, tuple[int, int]] | None = None
"""Allocation site → (bytes, blocks) at the first probe: a whole snapshot kept instead would
hold a Python tuple per traced block, hundreds of MiB, and grow the memory it measures."""


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _arena_count() -> int:
    """Heaps in malloc_info's XML: the main arena and one per thread arena glibc created."""
    buffer, size = ctypes.c_char_p(), ctypes.c_size_t()
    stream = _LIBC.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
    _LIBC.malloc_info(0, stream)
    _LIBC.fclose(stream)
    xml = ctypes.string_at(buffer, size.value).decode()
    _LIBC.free(ctypes.cast(buffer, ctypes.c_void_p))
    return len(re.findall(r"<heap nr=", xml))


def probe() -> dict:
    global _first_sites
    info = _LIBC.mallinfo2()
    mib = 1024 * 1024
    record: dict = {
        "time": time.time(),
        "rss_mib": _rss_mib(),
        "malloc_in_use_mib": info.uordblks / mib,
        "malloc_free_kept_mib": info.fordblks / mib,
        "malloc_mmapped_mib": info.hblkhd / mib,
        "malloc_arenas": _arena_count(),
        "pymalloc_blocks": sys.getallocatedblocks(),
    }
    if tracemalloc.is_tracing():
        record["python_traced_mib"] = tracemalloc.get_traced_memory()[0] / mib
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        sites = {str(stat.traceback): (stat.size, stat.count) for stat in snapshot.statistics("lineno")}
        del snapshot
        if _first_sites is None:
            _first_sites = sites
        grown = {site: (size - _first_sites.get(site, (0, 0))[0], count - _first_sites.get(site, (0, 0))[1]) for site, (size, count) in sites.items()}
        record["grown_sites"] = [
            {"site": site, "grown_kib": round(size / 1024, 1), "count_grown": count}
            for site, (size, count) in sorted(grown.items(), key=lambda item: -item[1][0])[:_TOP_SITES]
        ]
    if os.environ.get("MEMORY_PROBE_TRIM"):
        record["trim_gave_back_mib"] = record["rss_mib"] - (_LIBC.malloc_trim(0), _rss_mib())[1]
    return record


def _on_signal(signum: int, frame: FrameType | None) -> None:
    with open(os.environ["MEMORY_PROBE_FILE"], "a") as out:
        out.write(json.dumps(probe()) + "\n")


if __name__ == "__main__":
    signal.signal(signal.SIGUSR2, _on_signal)
    if os.environ.get("MEMORY_PROBE_PIPER_SHRINK"):
        from wyoming_indextts.engines.piper import vits_stream

        vits_stream.OUTSIZED_FRAMES = 0
    sys.argv = ["wyoming_indextts", *sys.argv[1:]]
    runpy.run_module("wyoming_indextts", run_name="__main__", alter_sys=True)
