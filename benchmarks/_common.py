"""Shared by the benchmark scripts: peak memory of a block of code (Linux), machine summary, commit
stamp, reports and their JSON.

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


def machine_summary() -> str:
    """``"<cpu model>, <n> cores, <ram> GiB RAM"`` for a report header."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    total = memory_total_bytes()
    return f"{cpu}, {os.cpu_count()} cores" + (f", {total / 2**30:.1f} GiB RAM" if total else "")


def verdict(ok: bool) -> str:
    """How a report states whether a target was met."""
    return "yes" if ok else "**no**"


def save_report(path: Path, lines: list) -> None:
    """Write the report's lines; the file appears only once it is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(path)


def git_stamp() -> dict:
    """The commit the results come from, and whether the checkout had uncommitted changes."""
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*words):
        return subprocess.run(["git", *words], cwd=root, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def save_results(out: Path, record: dict, report_lines: list) -> None:
    """``record`` as JSON beside the Markdown report ``out`` (same name, ``.json``); both written whole or not at all."""
    import json

    json_path = out.with_suffix(".json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    partial = json_path.with_name(json_path.name + ".tmp")
    partial.write_text(json.dumps(record, indent=1))
    partial.replace(json_path)
    save_report(out, report_lines)
    print(f"wrote {out} and {json_path}")


def run_in_fresh_process(script: str, flag: str, argument: str, env: dict = None) -> dict:
    """Run ``python script flag argument`` and parse the JSON its last stdout line prints.

    The measuring children of the benchmarks (peak memory needs a process of its own) go through
    here. ``env``: variables to set in the child besides the parent's (read at its start, such as
    glibc's ``MALLOC_MMAP_THRESHOLD_``). Gives ``{"error": ...}`` where peak memory cannot be read
    or the child fails.
    """
    import json
    import os
    import subprocess
    import sys

    if not SUPPORTED:
        return {"error": "needs Linux /proc"}
    result = subprocess.run([sys.executable, script, flag, argument], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])
