"""Peak resident memory added by a block of code, for the benchmark scripts (Linux only).

Linux keeps the peak resident set size of a process (VmHWM) and resets it when "5" is written to
/proc/self/clear_refs; a block's added peak is then VmHWM after it minus VmRSS before it. Run the
block in a fresh process, after a warm-up, so earlier allocations and imports are not counted.
"""

import gc
from contextlib import contextmanager
from pathlib import Path

CLEAR_REFS = Path("/proc/self/clear_refs")
SUPPORTED = CLEAR_REFS.exists()


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


@contextmanager
def added_peak_memory():
    """Yield a dict whose ``"bytes"`` is, after the block, the peak memory the block added."""
    gc.collect()
    baseline = _status_kib("VmRSS")
    CLEAR_REFS.write_text("5")
    measured: dict = {}
    yield measured
    measured["bytes"] = (_status_kib("VmHWM") - baseline) * 1024
