"""Time and peak memory, measured the same way for every method; threads; the machine.

Peak memory is Linux's: the peak resident set (VmHWM) is reset by writing "5" to
/proc/self/clear_refs, so a block's added peak is VmHWM after it minus VmRSS before it. A method
declared ``isolate=True`` runs in a fresh process, so earlier allocations cannot hide in its peak.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from pathlib import Path

CLEAR_REFS = Path("/proc/self/clear_refs")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "RAYON_NUM_THREADS")  # Rayon: the Rust peers' thread pool


def limit_threads_in_environment(threads: int) -> None:
    """Before NumPy loads a BLAS: every pool started later gets ``threads`` threads."""
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)


def limit_threads(threads: int) -> None:
    """Torch and every BLAS/OpenMP pool already loaded get ``threads`` threads."""
    import threadpoolctl
    import torch

    torch.set_num_threads(threads)
    threadpoolctl.threadpool_limits(threads)


def status_bytes(field: str):
    """A ``/proc/self/status`` field in bytes, or None off Linux."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def memory_total_bytes():
    """The machine's RAM in bytes (Linux), or None."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def machine() -> dict:
    """CPU model, cores, RAM, Python and OS, for the stamp."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    total = memory_total_bytes()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(total / 2**30, 1) if total else None,
            "python": platform.python_version(), "system": platform.system()}


class Meter:
    """Times the blocks a method wraps and measures the peak memory they add.

    ``with meter:`` adds the block's wall seconds; ``meter.repeat(function, n)`` runs ``function``
    once to warm up and ``n`` times more, and records the median. The peak is the largest
    resident memory any measured block added over what the process held when it began.
    """

    def __init__(self, collect: bool = True):
        self.collect = collect
        self.seconds = 0.0
        self.peak_bytes = None
        self.used = False
        self._started = None
        self._baseline = None

    def __enter__(self):
        if self.collect and not self.used:  # a full collection costs ~0.2 s with torch loaded: once a meter
            gc.collect()
        self._baseline = status_bytes("VmRSS")
        if self._baseline is not None and CLEAR_REFS.exists():
            try:
                CLEAR_REFS.write_text("5")
            except OSError:
                self._baseline = None
        self.used = True
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._started
        self._record_peak()
        return False

    def _record_peak(self):
        high = status_bytes("VmHWM")
        if self._baseline is not None and high is not None:
            added = max(high - self._baseline, 0)
            self.peak_bytes = added if self.peak_bytes is None else max(self.peak_bytes, added)

    def repeat(self, function, repeats: int, warmup: int = 1):
        """Median seconds of ``repeats`` calls after ``warmup`` untimed ones; gives the last result.

        Each call's result is dropped before the next call, so that a call's peak does not count the
        previous result still held.
        """
        result = None
        for _ in range(warmup):
            result = None
            result = function()
        times = []
        for _ in range(max(repeats, 1)):
            seconds_before = self.seconds
            result = None
            with self:
                result = function()
            times.append(self.seconds - seconds_before)
        self.seconds = statistics.median(times)
        return result
