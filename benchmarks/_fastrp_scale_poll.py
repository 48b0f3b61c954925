"""Launching the FastRP scaling benchmark's commands with their memory polled from /proc.

The parent polls /proc/<pid>/status of the child and all its descendants (torchrun's workers are the
ranks) every 25 ms for RssAnon and VmHWM, and kills the child when the machine's MemAvailable falls
under 1 GiB (recorded as out of memory).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.025
SCAN_SECONDS = 0.25
MEMORY_FLOOR = 2**30        # kill a child when MemAvailable falls below this


def _status(pid: int) -> dict:
    """RssAnon and VmHWM of ``pid`` in bytes ({} once it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(("RssAnon:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return {}
    return out


def _descendants(root: int) -> dict:
    """``{pid: parent pid}`` of every process below ``root`` (from /proc/*/stat)."""
    children: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, queue = {}, [root]
    while queue:
        pid = queue.pop()
        for child in children.get(pid, ()):
            found[child] = pid
            queue.append(child)
    return found


def _memory_available() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 1 << 62


def error_line(stderr: list) -> str:
    """The line of a child's standard error that says what failed (the first, under torchrun)."""
    pattern = re.compile(r"^\s*(graphkit: error:|[\w.]*(Error|Exception|Killed)\b)")
    found = [line.strip() for line in stderr if pattern.match(line) and "ChildFailedError" not in line]
    return (found or [line for line in stderr if line.strip()] or ["failed"])[0]


def run_polled(command: list, name: str, log_dir: Path, timeout: float) -> dict:
    """Run ``command``; its wall time, exit status and the memory peaks of it and its descendants.

    ``processes``: pid -> {"parent", "rss_anon_peak", "hwm_peak"}; ``tree_rss_anon_peak``: the peak of
    the summed RssAnon. Killed (with its process group) past ``timeout`` or when MemAvailable falls
    under ``MEMORY_FLOOR``; then ``error`` says why (``out_of_memory`` True for the latter).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "RAYON_NUM_THREADS": "1"}
    with open(log_dir / f"{name}.out", "w") as out, open(log_dir / f"{name}.err", "w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT, start_new_session=True)
        tracked, tree_peak, next_scan, killed = {proc.pid: 0}, 0, 0.0, None
        peaks: dict = {}
        while proc.poll() is None:
            now = time.perf_counter()
            if now >= next_scan:
                tracked.update(_descendants(proc.pid))
                next_scan = now + SCAN_SECONDS
            total = 0
            for pid in tracked:
                status = _status(pid)
                if status:
                    record = peaks.setdefault(pid, {"parent": tracked[pid], "rss_anon_peak": 0, "hwm_peak": 0})
                    record["rss_anon_peak"] = max(record["rss_anon_peak"], status.get("RssAnon", 0))
                    record["hwm_peak"] = max(record["hwm_peak"], status.get("VmHWM", 0))
                    total += status.get("RssAnon", 0)
            tree_peak = max(tree_peak, total)
            if now - started > timeout:
                killed = f"timed out after {timeout:.0f} s"
            elif _memory_available() < MEMORY_FLOOR:
                killed = f"out of memory: killed by the benchmark at {total / 2**30:.1f} GiB anonymous memory"
            if killed:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - started
    result = {"command": " ".join(str(c) for c in command), "wall_seconds": wall, "returncode": proc.returncode,
              "processes": {str(k): v for k, v in peaks.items()}, "tree_rss_anon_peak": tree_peak}
    stderr = (log_dir / f"{name}.err").read_text(errors="replace").strip().splitlines()
    if killed:
        result.update(error=killed, out_of_memory=killed.startswith("out of memory"))
    elif proc.returncode != 0:
        line = error_line(stderr)
        oom = proc.returncode in (-9, 137) or "memory" in line.lower()
        result.update(error=f"exit {proc.returncode}: {line[:400]}", out_of_memory=oom)
    result["stderr_tail"] = stderr[-5:]
    stdout = (log_dir / f"{name}.out").read_text(errors="replace").strip().splitlines()
    parsed = [line for line in stdout if line.startswith("{")]
    if parsed and "error" not in result:
        result["child"] = json.loads(parsed[-1])
    return result


def worker_peaks(result: dict, launcher: bool) -> list:
    """Peaks of each worker: torchrun's children (``launcher``), else the process itself."""
    processes = result.get("processes", {})
    roots = [int(k) for k, v in processes.items() if v["parent"] == 0]
    if not launcher:
        return [processes[str(pid)] for pid in roots]
    return [v for v in processes.values() if roots and v["parent"] == roots[0]]

