"""Streamed CTR training from files: the schema pass, held-out chunks, the shuffle buffer, validation.

:meth:`recsys.ctr.CTRClassifier.fit` given a path, a list of paths or a glob comes here. The files are
read in chunks (:class:`recsys.ctr.sources.ChunkSource`); nothing holds more than a chunk, the
shuffle buffer and the validation logits at once:

1. the schema pass reads the training chunks once and accumulates the field statistics
   (:meth:`~recsys.ctr.CTRPreprocessor.partial_fit`); with several ranks each reads its own chunks
   and the statistics are summed over the ranks, so every rank ends with the same vocabularies
   (checked by digest, :func:`tensorkit.distributed.check_identical`); the pass also counts the
   rows of every training chunk;
2. every epoch streams the training rows again, encodes them and draws batches from a shuffle
   buffer of ``shuffle_buffer`` rows (rows enter in file order and leave in random order). With
   several ranks each reads an equal share of the rows (:func:`share_rows`), so every step has the
   full global batch and an epoch has as many steps as on one process;
3. the held-out chunks give the validation log loss and AUC after every epoch (early stopping).

Held-out chunks: every ``k``-th chunk, ``k = max(2, round(1 / validation_fraction))``, from an offset
drawn from the fit's random source; with fewer than ``k`` chunks none may be held out, and training
then runs ``max_epochs`` with a warning.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from recsys.ctr.schema import CTRPreprocessor
from recsys.ctr.sources import ChunkSource
from tensorkit import distributed

__all__ = ["HeldOut", "RowBuffer", "fit_schema", "share_rows", "training_batches", "validate_chunks"]


class HeldOut(NamedTuple):
    """Which chunk ordinals are held out for validation: ``(ordinal + offset) % every == 0``."""

    every: int
    offset: int

    @classmethod
    def draw(cls, validation_fraction: float, rng: np.random.RandomState) -> "HeldOut":
        if validation_fraction <= 0:
            return cls(0, 0)
        every = max(2, int(round(1.0 / validation_fraction)))
        return cls(every, int(rng.randint(every)))

    def __call__(self, ordinal: int) -> bool:
        return self.every > 0 and (ordinal + self.offset) % self.every == 0

    def training(self, ordinal: int) -> bool:
        """Whether chunk ``ordinal`` is a training chunk (not held out)."""
        return not self(ordinal)

    def held_out_before(self, ordinal: int) -> int:
        """How many of the chunks ``0 .. ordinal - 1`` are held out."""
        if self.every == 0:
            return 0
        return (ordinal - 1 + self.offset) // self.every - (self.offset - 1) // self.every

    def owned(self, world: distributed.World, validation: bool = False) -> Callable[[int], bool]:
        """The chunks this rank reads in the schema pass (and in validation): every ``world.size``-th
        training chunk (or held-out chunk), counted among those alone."""
        if validation:
            return lambda o: self(o) and self.held_out_before(o) % world.size == world.rank
        return lambda o: self.training(o) and (o - self.held_out_before(o)) % world.size == world.rank


def fit_schema(source: ChunkSource, preprocessor: CTRPreprocessor, held_out: HeldOut,
               world: distributed.World) -> dict:
    """The schema pass: fit ``preprocessor`` on this rank's training chunks, merged over the ranks.

    Returns ``{"train_rows", "clicks", "val_chunks", "chunk_rows"}``: training rows and clicks summed
    over the ranks, the number of held-out chunks (counted from the files' lengths, not read), and
    ``(ordinal, rows)`` of every training chunk in file order (the same on every rank).
    """
    counts = np.zeros(2, dtype=np.int64)
    chunk_rows = []
    with distributed.stage(world, "reading the training data for the schema"):
        for chunk in source.chunks(select=held_out.owned(world)):
            preprocessor.partial_fit(chunk.features)
            counts += (len(chunk.labels), int(chunk.labels.sum()))
            chunk_rows.append((chunk.ordinal, len(chunk.labels)))
        val_chunks = sum(held_out(ordinal) for ordinal in range(source.n_chunks())) if held_out.every else 0
    gathered = distributed.all_gather_objects(world, (preprocessor.partial_state(), counts, chunk_rows))
    totals = np.sum([part[1] for part in gathered], axis=0)
    if totals[0] == 0:
        raise ValueError(f"no training rows: every chunk of {source!r} is held out for validation "
                         f"(lower validation_fraction or chunksize)")
    if world.active:
        preprocessor.merge_partial_states([part[0] for part in gathered])
    preprocessor.finalize()
    distributed.check_identical(world, (preprocessor.schema_, preprocessor.cardinalities_,
                                        {k: list(map(str, v)) for k, v in preprocessor.vocabularies_.items()},
                                        preprocessor.dense_min_, preprocessor.dense_max_), "the schema")
    return {"train_rows": int(totals[0]), "clicks": int(totals[1]), "val_chunks": int(val_chunks),
            "chunk_rows": sorted(pair for part in gathered for pair in part[2])}


def share_rows(chunk_rows: Sequence[tuple], n_ranks: int) -> list:
    """Each rank's share of the training rows: ``shares[r]`` lists ``(ordinal, start, stop)``, rows
    ``start:stop`` of chunk ``ordinal``.

    The ranks get equal numbers of rows (within one), so each runs the same number of steps of
    ``batch_size / n_ranks`` rows and an epoch matches one process's: the same number of steps, every
    one of the global batch. Whole chunks are dealt in turn (rank ``r`` takes chunks ``r``, ``r +
    n_ranks``, ... in ``chunk_rows``' order) for as many rounds as leave no rank above its share; the
    chunks after those rounds are cut into consecutive runs of rows, one per rank in rank order, that
    make up each rank's share. A rank therefore parses at most two chunks that it reads only in part.
    One rank takes every chunk whole.

    Examples
    --------
    >>> share_rows([(0, 100), (1, 100), (2, 100)], 2)
    [[(0, 0, 100), (2, 0, 50)], [(1, 0, 100), (2, 50, 100)]]
    """
    rows = np.array([n for _, n in chunk_rows], dtype=np.int64)
    total = int(rows.sum())
    targets = [total // n_ranks + (rank < total % n_ranks) for rank in range(n_ranks)]
    rounds = len(rows) // n_ranks
    dealt = np.zeros(n_ranks, dtype=np.int64)
    if rounds:
        per_round = rows[:rounds * n_ranks].reshape(rounds, n_ranks).cumsum(axis=0)
        fits = np.flatnonzero((per_round <= np.array(targets)).all(axis=1))
        rounds = int(fits[-1]) + 1 if len(fits) else 0
        dealt = per_round[rounds - 1] if rounds else dealt
    shares = [[(chunk_rows[k][0], 0, int(rows[k])) for k in range(rank, rounds * n_ranks, n_ranks)]
              for rank in range(n_ranks)]
    rank, wanted = 0, [target - int(d) for target, d in zip(targets, dealt)]
    for k in range(rounds * n_ranks, len(rows)):
        start = 0
        while start < rows[k]:
            while wanted[rank] == 0:
                rank += 1
            take = min(wanted[rank], int(rows[k]) - start)
            shares[rank].append((chunk_rows[k][0], start, start + take))
            wanted[rank] -= take
            start += take
    return shares


class RowBuffer:
    """A shuffle buffer of encoded rows: rows enter in order and leave as batches in random order.

    With ``capacity`` 0 rows leave in the order they came. Otherwise, once the buffer holds
    ``capacity`` rows it is shuffled and all but half of them leave (in whole batches), so every row
    waits beside at least ``capacity / 2`` others; :meth:`drain` empties it at the end.

    Examples
    --------
    >>> buffer = RowBuffer(capacity=0, batch_rows=2, rng=np.random.RandomState(0))
    >>> [len(b[2]) for b in buffer.add(np.zeros((3, 1)), np.zeros((3, 0), int), np.arange(3))]
    [2]
    >>> [b[2].tolist() for b in buffer.drain()]
    [[2]]
    """

    def __init__(self, capacity: int, batch_rows: int, rng: np.random.RandomState):
        self.capacity, self.batch_rows, self.rng = int(capacity), int(batch_rows), rng
        self._parts: list = []
        self._rows = 0

    def add(self, dense: np.ndarray, categorical: np.ndarray, labels: np.ndarray) -> Iterator[tuple]:
        """Put rows in; yield the batches that leave."""
        self._parts.append((dense, categorical, labels))
        self._rows += len(labels)
        if self.capacity == 0:
            yield from self._emit(keep=self._rows % self.batch_rows, shuffle=False)
        elif self._rows >= self.capacity:
            leaving = (self._rows - self.capacity // 2) // self.batch_rows * self.batch_rows
            yield from self._emit(keep=self._rows - leaving, shuffle=True)

    def drain(self) -> Iterator[tuple]:
        """Every row left, in batches (the last one possibly smaller)."""
        yield from self._emit(keep=0, shuffle=self.capacity > 0)

    def _emit(self, keep: int, shuffle: bool) -> Iterator[tuple]:
        if not self._parts:
            return
        dense, cats, labels = (np.concatenate(part) for part in zip(*self._parts))
        if shuffle:
            order = self.rng.permutation(len(labels))
            dense, cats, labels = dense[order], cats[order], labels[order]
        leaving = len(labels) - keep
        for start in range(0, leaving, self.batch_rows):
            stop = min(start + self.batch_rows, leaving)
            yield dense[start:stop], cats[start:stop], labels[start:stop]
        self._parts = [(dense[leaving:], cats[leaving:], labels[leaving:])] if keep else []
        self._rows = keep


def training_batches(source: ChunkSource, preprocessor: CTRPreprocessor, share: Sequence[tuple],
                     buffer: RowBuffer, to_device: Callable) -> Iterator[tuple]:
    """One epoch of this rank's training batches, as device tensors ``(dense, categorical, labels)``, from
    its ``share`` of the rows (:func:`share_rows`)."""
    parts = {ordinal: (start, stop) for ordinal, start, stop in share}
    for chunk in source.chunks(select=parts.__contains__):
        start, stop = parts[chunk.ordinal]
        features, labels = chunk.features, chunk.labels
        if (start, stop) != (0, len(labels)):
            features, labels = features.iloc[start:stop], labels[start:stop]
        inputs = preprocessor.transform(features)
        for batch in buffer.add(inputs.dense, inputs.categorical, labels):
            yield to_device(batch)
    for batch in buffer.drain():
        yield to_device(batch)


def validate_chunks(model: torch.nn.Module, source: ChunkSource, preprocessor: CTRPreprocessor,
                    held_out: HeldOut, world: distributed.World, batch_size: int) -> dict:
    """``{"val_loss", "val_auc"}`` on the held-out chunks of every rank (the same on every rank).

    The AUC is left out when the held-out labels hold one class.
    """
    from recsys.ctr.training import predict_logits
    from recsys.metrics import roc_auc

    logits, labels = [], []
    with distributed.stage(world, "reading the validation data"):
        for chunk in source.chunks(select=held_out.owned(world, validation=True)):
            inputs = preprocessor.transform(chunk.features)
            logits.append(predict_logits(model, inputs, batch_size).detach().cpu().to(torch.float64).numpy())
            labels.append(chunk.labels)
    gathered = distributed.all_gather_objects(world, (np.concatenate(logits) if logits else np.zeros(0),
                                                      np.concatenate(labels) if labels else np.zeros(0, np.int64)))
    all_logits = np.concatenate([part[0] for part in gathered])
    all_labels = np.concatenate([part[1] for part in gathered])
    loss = F.binary_cross_entropy_with_logits(torch.as_tensor(all_logits), torch.as_tensor(all_labels, dtype=torch.float64))
    record = {"val_loss": float(loss)}
    if np.isfinite(record["val_loss"]) and 0 < all_labels.sum() < len(all_labels):   # a diverged loss is reported
        record["val_auc"] = roc_auc(all_labels, all_logits)
    return record


def warn_without_validation(source: ChunkSource, validation_fraction: float, counts: dict) -> None:
    """Warn when ``validation_fraction`` asked for held-out chunks but none was held out."""
    if validation_fraction > 0 and counts["val_chunks"] == 0:
        warnings.warn(f"no chunk was held out for validation ({source!r} has too few chunks for "
                      f"validation_fraction={validation_fraction:g}; lower chunksize): training runs every epoch "
                      f"without early stopping", UserWarning, stacklevel=3)


def rank_generator(seed: int, world: distributed.World) -> np.random.RandomState:
    """This rank's own stream for the shuffle buffer, from the fit's shared ``seed``."""
    return np.random.RandomState(np.random.SeedSequence([int(seed), world.rank]).generate_state(1)[0])


def first_feature_names(source: ChunkSource) -> list:
    """The feature columns, in file order (what ``predict`` will check new frames against)."""
    features, _ = source.first_rows(1)
    return [str(c) for c in features.columns]

