"""Run a function on several gloo processes from a test, as ``torchrun`` would, and collect the results.

``run_ranks(fn, world_size=2, args=(...))`` spawns ``world_size`` processes, each of which joins a
process group through a file rendezvous in a fresh temporary folder (no sockets of ours, no ports),
limits itself to one thread, calls ``fn(rank, *args)`` and sends back its return value, or the
exception it raised. ``fn`` must be importable (defined at module level in a test module).
"""

from __future__ import annotations

import datetime
import os
import pickle
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


class RankOutcome:
    """What one rank returned (``value``) or raised (``error``, the exception itself, with its ``trace``)."""

    def __init__(self, value: Any = None, error: BaseException = None, trace: str = ""):
        self.value, self.error, self.trace = value, error, trace

    def __repr__(self) -> str:
        return f"RankOutcome(value={self.value!r}, error={self.error!r})"


def _rank_main(rank: int, fn: Callable, world_size: int, init_file: str, out_dir: str, args: tuple,
               env: dict) -> None:
    os.environ.update(env)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=60))
    try:
        outcome = RankOutcome(value=fn(rank, *args))
    except BaseException as error:   # sent back to the test, which decides
        outcome = RankOutcome(error=error, trace=traceback.format_exc())
    try:
        payload = pickle.dumps(outcome)
    except Exception as error:
        payload = pickle.dumps(RankOutcome(error=RuntimeError(f"unpicklable outcome: {error}"),
                                           trace=outcome.trace))
    Path(out_dir, f"rank{rank}.pkl").write_bytes(payload)
    dist.destroy_process_group()
    os._exit(0)   # no interpreter teardown: gloo's threads may abort it after a rank failed on purpose


def run_ranks(fn: Callable, world_size: int = 2, args: tuple = (), env: dict = None) -> list:
    """``[RankOutcome, ...]`` of ``fn(rank, *args)`` on ``world_size`` spawned gloo processes.

    ``env`` is set in each process before the group starts (e.g. ``TENSORKIT_DIST_TIMEOUT``).
    """
    with tempfile.TemporaryDirectory() as folder:
        init_file = os.path.join(folder, "rendezvous")
        context = mp.start_processes(_rank_main, args=(fn, world_size, init_file, folder, tuple(args),
                                                       dict(env or {})),
                                     nprocs=world_size, join=False, start_method="spawn")
        for process in context.processes:
            process.join(timeout=600)
        missing = [rank for rank in range(world_size) if not Path(folder, f"rank{rank}.pkl").exists()]
        if missing:
            codes = [process.exitcode for process in context.processes]
            raise RuntimeError(f"ranks {missing} ended without an outcome (exit codes {codes})")
        return [pickle.loads(Path(folder, f"rank{rank}.pkl").read_bytes()) for rank in range(world_size)]


def values(outcomes: list) -> list:
    """The ranks' return values, or the first rank's error re-raised with its traceback in the message."""
    for rank, outcome in enumerate(outcomes):
        if outcome.error is not None:
            raise AssertionError(f"rank {rank} raised:\n{outcome.trace}")
    return [outcome.value for outcome in outcomes]
