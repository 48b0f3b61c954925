"""Data-parallel training on an initialised ``torch.distributed`` process group.

An estimator that finds an initialised process group of more than one process (as under
``torchrun --nproc_per_node N``) trains data-parallel without any other change of code; a group of
one, or none, is the single-process fit. This module is what the estimators share for that:

- :func:`current_world`: this process's :class:`World` (rank, size and a process group of the
  estimator's own whose collectives time out, :func:`default_timeout`);
- :func:`stage`: a block of rank-local work (reading a file, building a schema) after which every
  rank learns whether any rank failed, and all raise, the failing rank with its own error and the
  others with a :class:`RankFailedError` that names the failing rank and repeats its message;
- :func:`reduce_gradients`: one training step's gradients summed over the ranks, dense
  parameters in one flat all-reduce and embedding-like parameters row-sparse (only the rows a
  step touched travel, all-gathered), with the step's status (rows seen, failures) riding along;
- :func:`check_identical`: a value (a schema, a mask) compared across ranks by its digest, an
  error naming the ranks that differ;
- :func:`broadcast_parameters` and :func:`all_gather_objects`.

Launch with ``torchrun`` (gloo on CPUs, NCCL on GPUs); nothing here starts processes or opens
sockets. Collective calls time out after :func:`default_timeout` seconds (``TENSORKIT_DIST_TIMEOUT``
in the environment, 300 by default), so a rank that dies makes the others raise instead of hang.

Examples
--------
A single process (no process group) is a world of one, where every helper is the identity:

>>> import torch
>>> from tensorkit import distributed
>>> world = distributed.current_world()
>>> world.size, world.rank, world.active
(1, 0, False)
>>> with distributed.stage(world, "reading the data"):
...     pass
>>> param = torch.nn.Parameter(torch.ones(3))
>>> param.grad = torch.full((3,), 2.0)
>>> distributed.reduce_gradients(world, [param], n_rows=4).n_rows
4.0
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import os
import pickle
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist

from tensorkit import backend

__all__ = [
    "RankFailedError",
    "StepResult",
    "World",
    "all_gather_objects",
    "broadcast_parameters",
    "check_identical",
    "current_world",
    "default_timeout",
    "digest",
    "launched_process_group",
    "local_rank_device",
    "reduce_gradients",
    "stage",
]

_TIMEOUT_VARIABLE = "TENSORKIT_DIST_TIMEOUT"
_DEFAULT_TIMEOUT_S = 300.0


class RankFailedError(RuntimeError):
    """Another rank of the process group failed; its rank and its error message are attached.

    Attributes
    ----------
    rank : int
        The first rank that failed.
    error_type : str
        The name of that rank's exception class (``"ValueError"``, ...).
    """

    def __init__(self, rank: int, error_type: str, message: str, what: str):
        super().__init__(f"rank {rank} failed while {what}: {error_type}: {message}")
        self.rank, self.error_type, self.message, self.what = rank, error_type, message, what

    def __reduce__(self):
        return type(self), (self.rank, self.error_type, self.message, self.what)


def default_timeout() -> datetime.timedelta:
    """How long a collective call waits for the other ranks: ``TENSORKIT_DIST_TIMEOUT`` seconds, else 300."""
    text = os.environ.get(_TIMEOUT_VARIABLE, "")
    try:
        seconds = float(text) if text else _DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"{_TIMEOUT_VARIABLE} must be a number of seconds; got {text!r}") from None
    if not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{_TIMEOUT_VARIABLE} must be a positive number of seconds; got {text!r}")
    return datetime.timedelta(seconds=seconds)


@dataclass(frozen=True)
class World:
    """This process's place in the process group: ``rank`` of ``size``, and the group to talk on.

    ``World()`` is the single process. ``active`` says whether there is anyone else to talk to.
    """

    rank: int = 0
    size: int = 1
    group: Any = None

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the rank that shows progress and keeps the history."""
        return self.rank == 0

    def share(self, n: int) -> tuple:
        """``(start, stop)`` of this rank's contiguous share of ``n`` items (the first ranks take one more)."""
        base, extra = divmod(int(n), self.size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (self.rank < extra)


def current_world(timeout: Optional[datetime.timedelta] = None) -> World:
    """The initialised process group as a :class:`World`, or ``World()`` when there is none (or one process).

    With several processes, every rank must call this at the same point: the first call creates a
    group whose collectives time out after ``timeout`` (:func:`default_timeout` by default), later
    calls with the same timeout reuse it.
    """
    if not dist.is_available() or not dist.is_initialized():
        return World()
    size = dist.get_world_size()
    if size == 1:
        return World()
    timeout = timeout or default_timeout()
    default = dist.group.WORLD
    key = (id(default), timeout)
    cached = _GROUPS.get(key)
    if cached is None or cached[0] is not default:   # one group per default group and timeout, made once
        cached = _GROUPS[key] = (default, dist.new_group(timeout=timeout))
    return World(rank=dist.get_rank(), size=size, group=cached[1])


_GROUPS: dict = {}


def _collective_device(world: World, like: Optional[torch.Tensor] = None) -> torch.device:
    """Where the group's tensors must live: the caller's device, or the CPU for gloo."""
    if like is not None:
        return like.device
    return backend.resolve_device("cpu")


def all_gather_objects(world: World, value: Any) -> list:
    """``value`` from every rank, in rank order (``[value]`` in a world of one)."""
    if not world.active:
        return [value]
    gathered: list = [None] * world.size
    dist.all_gather_object(gathered, value, group=world.group)
    return gathered


def _raise_first_failure(statuses: Sequence[Any], what: str, own: Optional[BaseException] = None) -> None:
    for rank, status in enumerate(statuses):
        if status is not None:
            if own is not None:
                raise own
            raise RankFailedError(rank, status[0], status[1], what)


@contextlib.contextmanager
def stage(world: World, what: str) -> Iterator[None]:
    """Run a block of rank-local work; afterwards every rank raises if any rank failed in it.

    The failing rank raises its own error; the others a :class:`RankFailedError` naming it, with
    ``what`` (e.g. ``"reading the training data"``) in the message. In a world of one the block's
    error simply propagates.
    """
    if not world.active:
        yield
        return
    try:
        yield
    except Exception as error:
        statuses = all_gather_objects(world, (type(error).__name__, str(error)))
        _raise_first_failure(statuses, what, own=error)
        raise
    statuses = all_gather_objects(world, None)
    _raise_first_failure(statuses, what)


def share_failure(world: World, error: Optional[BaseException], what: str) -> None:
    """The per-step form of :func:`stage`: every rank calls it with its error (or None) and all raise
    when any rank had one. Call it only after the ranks learned (from a status all-reduce) that a
    rank failed, so that nobody waits on it in vain."""
    status = None if error is None else (type(error).__name__, str(error))
    _raise_first_failure(all_gather_objects(world, status), what, own=error)


def digest(value: Any) -> str:
    """A SHA-256 digest of ``value``: tensors and arrays by their bytes, dtype and shape, others pickled."""
    hasher = hashlib.sha256()
    _update_digest(hasher, value)
    return hasher.hexdigest()


def _update_digest(hasher: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().contiguous()
        hasher.update(f"tensor{tuple(value.shape)}{value.dtype}".encode())
        hasher.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    elif isinstance(value, np.ndarray):
        hasher.update(f"array{value.shape}{value.dtype}".encode())
        # An object array's bytes are pointers, different in every process: hash its items instead.
        hasher.update(pickle.dumps(value.tolist(), protocol=4) if value.dtype.hasobject
                      else np.ascontiguousarray(value).tobytes())
    elif isinstance(value, Mapping):
        for key in sorted(value, key=repr):
            hasher.update(repr(key).encode())
            _update_digest(hasher, value[key])
    elif isinstance(value, (list, tuple)):
        hasher.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _update_digest(hasher, item)
    else:
        buffer = io.BytesIO()
        pickle.dump(value, buffer, protocol=4)
        hasher.update(buffer.getvalue())


def check_identical(world: World, value: Any, what: str) -> None:
    """Raise a ``RuntimeError`` on every rank unless ``value`` has the same :func:`digest` on all ranks.

    The message names ``what`` and the ranks that differ from rank 0.
    """
    if not world.active:
        return
    digests = all_gather_objects(world, digest(value))
    differing = [rank for rank, d in enumerate(digests) if d != digests[0]]
    if differing:
        raise RuntimeError(f"{what} differs across ranks: ranks {differing} do not match rank 0 "
                           f"(every rank must agree on it)")


@torch.no_grad()
def broadcast_parameters(world: World, module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (in place)."""
    if not world.active:
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=dist.get_global_rank(world.group, 0), group=world.group)


class StepResult(NamedTuple):
    """What :func:`reduce_gradients` learned about the step on all ranks together."""

    n_rows: float
    """Rows (examples) the step saw over all ranks."""
    extras: tuple
    """The ``extras`` summed over the ranks."""
    failed: bool
    """Whether any rank reported a failure (every rank then raises through :func:`share_failure`)."""


def _unique_rows(tables: list, device: torch.device) -> list:
    """Each table's distinct rows, from one sort over all tables (rows shifted into one id space)."""
    sizes = [param.shape[0] for param, _ in tables]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    shifted = torch.cat([rows.to(device=device, dtype=torch.int64) + int(offset)
                         for (_, rows), offset in zip(tables, offsets[:-1])])
    distinct = torch.unique(shifted)
    bounds = torch.searchsorted(distinct, torch.as_tensor(offsets, device=device)).tolist()
    return [distinct[lo:hi] - int(offset) for lo, hi, offset in zip(bounds[:-1], bounds[1:], offsets[:-1])]


def _row_sparse_reduce(world: World, tables: list, counts: torch.Tensor) -> None:
    """Sum the gradients of ``tables`` (``(param, distinct rows)`` pairs) over the ranks, in place.

    Only the touched rows travel (the other rows of each gradient must be zero), in one all-gather
    of a buffer that holds every table's row indices (their bytes, viewed in the gradients' dtype)
    and then their gradient rows, each table padded to the most rows any rank touched in it (a pad
    adds zeros to row 0). ``counts`` (ranks x tables) says how many rows each rank touched.
    """
    device, dtype = tables[0][0].grad.device, tables[0][0].grad.dtype
    if any(param.grad.dtype != dtype for param, _ in tables):
        raise TypeError("row-sparse parameters must share one dtype")
    longest = [int(size) for size in counts.max(dim=0).values.tolist()]
    if not any(longest):   # no rank touched a row: the summed gradients are zero
        for param, _ in tables:
            param.grad.zero_()
        return
    widths = [param.grad[0].numel() if param.grad.dim() > 1 else 1 for param, _ in tables]
    index = torch.zeros(sum(longest), device=device, dtype=torch.int64)
    n_index = index.view(dtype).numel()
    buffer = torch.zeros(n_index + sum(s * w for s, w in zip(longest, widths)), device=device, dtype=dtype)
    index_offset, value_offset = 0, n_index
    for (param, rows), size, width in zip(tables, longest, widths):
        n = rows.numel()
        index[index_offset:index_offset + n] = rows
        buffer[value_offset:value_offset + n * width] = param.grad[rows].reshape(-1)
        index_offset += size
        value_offset += size * width
    buffer[:n_index] = index.view(dtype)   # the int64 indices' bytes, moved untouched
    gathered = torch.empty((world.size, buffer.numel()), device=device, dtype=dtype)
    dist.all_gather(list(gathered.unbind(0)), buffer, group=world.group)
    indices = gathered[:, :n_index].contiguous().view(torch.int64)
    index_offset, value_offset = 0, n_index
    for (param, _), size, width in zip(tables, longest, widths):
        grad = param.grad.reshape(param.grad.shape[0], width)
        grad.zero_()
        grad.index_add_(0, indices[:, index_offset:index_offset + size].reshape(-1),
                        gathered[:, value_offset:value_offset + size * width].reshape(-1, width))
        index_offset += size
        value_offset += size * width


def reduce_gradients(world: World, params: Sequence[torch.nn.Parameter], n_rows: float, *,
                     row_sparse: Optional[Mapping[torch.nn.Parameter, torch.Tensor]] = None,
                     extras: Sequence[float] = (), failed: bool = False) -> StepResult:
    """Sum one step's gradients over the ranks, in place, with the step's status.

    Parameters
    ----------
    world : World
    params : sequence of Parameter
        Every trainable parameter, in the same order on every rank. A parameter without a gradient
        (this rank's batch was empty) counts as zero.
    n_rows : float
        Examples this rank's batch held (0 for an empty batch).
    row_sparse : mapping of Parameter to LongTensor, optional
        Parameters whose gradient is non-zero only at the given rows of their first dimension
        (embedding tables): exchanged row-wise, not as dense tensors.
    extras : sequence of float
        Numbers to sum over the ranks along the way (a summed loss, a count).
    failed : bool
        This rank failed in the step: it sends zeros and the flag, and every rank learns of it.

    Returns
    -------
    StepResult
        In a world of one, ``n_rows`` and ``extras`` as given and the gradients untouched.
    """
    if not world.active:
        return StepResult(float(n_rows), tuple(float(e) for e in extras), bool(failed))
    row_sparse = dict(row_sparse or {})
    sparse_ids = {id(p) for p in row_sparse}
    dense = [p for p in params if id(p) not in sparse_ids]
    device = _collective_device(world, params[0] if params else None)
    dtype = params[0].dtype if params else torch.float64   # one buffer, in the weights' own precision
    tables = []
    for p, rows in row_sparse.items():
        if p.grad is None or failed:
            p.grad = torch.zeros_like(p)
            rows = rows[:0]
        tables.append((p, rows))
    if tables:
        tables = list(zip([p for p, _ in tables], _unique_rows(tables, tables[0][0].grad.device)))
    parts = []
    for p in dense:
        if p.grad is None or failed:
            parts.append(torch.zeros(p.numel(), device=device, dtype=dtype))
        else:
            parts.append(p.grad.detach().reshape(-1).to(dtype))
    # each rank writes its tables' row counts in its own slot, so the sum holds every rank's counts
    counts = torch.zeros((world.size, len(tables)), device=device, dtype=dtype)
    counts[world.rank] = torch.tensor([float(rows.numel()) for _, rows in tables], device=device, dtype=dtype)
    status = torch.tensor([float(n_rows), float(bool(failed)), *[float(e) for e in extras]], device=device,
                          dtype=dtype)
    flat = torch.cat(parts + [counts.reshape(-1), status])
    dist.all_reduce(flat, group=world.group)
    summed = flat[-status.numel():].tolist()
    if summed[1] > 0:
        return StepResult(summed[0], tuple(summed[2:]), True)
    offset = 0
    for p in dense:
        size = p.numel()
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        p.grad.copy_(flat[offset:offset + size].reshape(p.shape).to(p.grad.dtype))
        offset += size
    if tables:
        all_counts = flat[offset:offset + counts.numel()].reshape(counts.shape).round().to(torch.int64)
        _row_sparse_reduce(world, tables, all_counts)
    return StepResult(summed[0], tuple(summed[2:]), False)


@contextlib.contextmanager
def launched_process_group(device: Optional[torch.device] = None) -> Iterator[None]:
    """Under ``torchrun`` (``WORLD_SIZE`` above 1) without a process group: one for the block.

    gloo for CPUs (``device`` None or a CPU), NCCL for CUDA devices, with the
    :func:`default_timeout`; destroyed when the block ends. Outside ``torchrun``, or when a group
    exists already, it does nothing. A block that ends normally waits for every rank before the
    group is destroyed; one that raises does not wait (a failed rank must not hang the others).
    For command-line entry points; a library call uses the group its caller started.
    """
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1 or not dist.is_available() or dist.is_initialized():
        yield
        return
    on_gpu = device is not None and device.type == "cuda"
    dist.init_process_group("nccl" if on_gpu else "gloo", timeout=default_timeout())
    try:
        yield
        # Every rank past its last collective before any closes its connections: gloo aborts the
        # process ("terminate called without an active exception") when a peer leaves mid-operation.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def local_rank_device(device: torch.device) -> torch.device:
    """``device``, except that a bare CUDA device under ``torchrun`` becomes this rank's GPU (``LOCAL_RANK``)."""
    local_rank = os.environ.get("LOCAL_RANK")
    if device.type == "cuda" and device.index is None and local_rank and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return backend.resolve_device(f"cuda:{int(local_rank)}")
    return device
