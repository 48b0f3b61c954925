"""The network behind :class:`recsys.DSLRecommender`: embedding tables, MF and LightGCN scores, BPR loss.

LightGCN (He et al., SIGIR 2020) propagates the embeddings ``n_layers`` times over the
symmetric-normalised user-item graph ``D^-1/2 A D^-1/2`` (:func:`normalized_adjacency`) and averages
the layers. The layer mean is one linear, self-adjoint map, so training applies it (and, in the backward
pass, to the gradient) in place with two layer buffers (:func:`mean_of_layers`), where autograd through
the layers would keep every layer and its running sum; the result is the same.

Examples
--------
>>> import scipy.sparse as sp
>>> from recsys._dsl_net import normalized_adjacency
>>> adj = normalized_adjacency(sp.csr_matrix([[1.0, 0.0], [1.0, 1.0]]))
>>> adj.shape, adj.to_dense()[0, 2].item()
(torch.Size([4, 4]), 0.7071067690849304)
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recsys.sparse import DynamicSparsity, SparseTable
from tensorkit import backend

__all__ = ["bpr_loss", "mean_of_layers", "normalized_adjacency", "training_state_bytes"]


def normalized_adjacency(train: sp.csr_matrix, device: Any = "cpu", dtype: Any = "float32") -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` of the user-item bipartite graph (users first), as a torch sparse CSR tensor.

    ``A = [[0, R], [R^T, 0]]``, normalised by :func:`graphkit.ops.normalized_adjacency`; nodes without
    edges get a zero row. Indices are int32 where the graph allows.
    """
    from graphkit.ops import normalized_adjacency as normalize

    bipartite = sp.bmat([[None, train], [train.T, None]], format="csr", dtype=np.float64)
    normalized = normalize(bipartite, kind="symmetric")
    narrow = max(normalized.nnz, normalized.shape[0]) < 2**31
    return backend.as_sparse_tensor(normalized, device=device, dtype=dtype,
                                    index_dtype=torch.int32 if narrow else torch.int64)


def mean_of_layers(adj: torch.Tensor, x: torch.Tensor, n_layers: int, total: torch.Tensor) -> torch.Tensor:
    """``total <- (x + adj x + ... + adj^n_layers x) / (n_layers + 1)``, LightGCN's layer mean, in place.

    ``total`` must hold a copy of ``x`` (or be ``x`` itself, which is then overwritten). Each layer is
    written by ``torch.addmm(..., beta=0, out=...)`` into one of two reused buffers, so the whole sum takes
    ``total`` and two ``x``-sized buffers; ``adj @ x`` would allocate two blocks per layer, and on a CPU
    CSR operand it is also about 2.5 times slower (Gowalla, one thread).
    """
    current, spare = x, None
    for _ in range(n_layers):
        layer = torch.empty_like(x) if spare is None else spare
        torch.addmm(layer, adj, current, beta=0, out=layer)
        total.add_(layer)
        spare = None if current is x else current   # x is the caller's (or total): never overwritten
        current = layer
    return total.div_(n_layers + 1)


class _LightGCNPropagation(torch.autograd.Function):
    """LightGCN's final embeddings ``mean_k adj^k ego`` (k = 0 .. n_layers) for a symmetric ``adj``.

    The map is linear and, with ``adj`` symmetric, self-adjoint, so the backward applies it to the
    gradient. Nothing but ``adj`` is saved: autograd through the layers would keep every layer and its
    running sum.
    """

    @staticmethod
    def forward(ctx, ego, adj, n_layers):
        ctx.adj, ctx.n_layers = adj, n_layers
        return mean_of_layers(adj, ego, n_layers, ego.clone())

    @staticmethod
    def backward(ctx, grad):
        total = grad.clone(memory_format=torch.contiguous_format)   # ours to overwrite: x and total at once
        return mean_of_layers(ctx.adj, total, ctx.n_layers, total), None, None


class _SquaredRowNorms(torch.autograd.Function):
    """``|x_r|^2`` for every row ``r`` of a 2-D ``x``; the backward, ``2 grad_r x_r``, takes one ``x``-sized
    block (autograd through ``x.pow(2).sum(1)`` takes three, and the forward one more)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.bmm(x.unsqueeze(1), x.unsqueeze(2)).view(-1)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return x * (2 * grad).unsqueeze(1)


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Mean BPR loss ``-log sigmoid(pos - neg)``."""
    return F.softplus(neg_scores - pos_scores).mean()


def _ranking_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, denominator: Optional[int]) -> torch.Tensor:
    """:func:`bpr_loss`, or the summed BPR loss over ``denominator`` when one is given."""
    if denominator is None:
        return bpr_loss(pos_scores, neg_scores)
    return F.softplus(neg_scores - pos_scores).sum() / denominator


# ------------------------------------------------------------------------------------------------
# the network


class _DSLNet(nn.Module):
    """User and item tables (dense ``nn.Embedding`` or :class:`SparseTable`) and the backbone's forward."""

    def __init__(self, n_users: int, n_items: int, dim: int, backbone: str, n_layers: int, storage: str,
                 density: float, init_std: float, generator: torch.Generator, device, dtype,
                 row_balanced: bool = False, row_counts: Optional[tuple] = None):
        super().__init__()
        self.n_users, self.n_items, self.backbone, self.n_layers = n_users, n_items, backbone, n_layers
        self.storage = storage
        if storage == "table":
            seeds = torch.randint(0, 2**31 - 1, (2,), generator=generator).tolist()
            user_counts, item_counts = row_counts if row_counts is not None else (None, None)
            self.user = SparseTable(n_users, dim, density, init_std, seeds[0], device, dtype, row_balanced, user_counts)
            self.item = SparseTable(n_items, dim, density, init_std, seeds[1], device, dtype, row_balanced, item_counts)
        else:
            self.user = nn.Embedding(n_users, dim)
            self.item = nn.Embedding(n_items, dim)
            with torch.no_grad():
                for emb in (self.user, self.item):
                    w = torch.randn(emb.weight.shape, generator=generator) * init_std
                    emb.weight.copy_(w)
            self.to(device=device, dtype=dtype)

    def _rows(self, table: nn.Module, rows: torch.Tensor) -> torch.Tensor:
        return table(rows) if isinstance(table, SparseTable) else table.weight[rows]

    def _full(self, table: nn.Module) -> torch.Tensor:
        return table() if isinstance(table, SparseTable) else table.weight

    def embeddings(self, adj: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Final user and item embeddings and the stacked ego embeddings (layer 0)."""
        final, ego = self._stacked(adj)
        return final[: self.n_users], final[self.n_users:], ego

    def _stacked(self, adj: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Final and ego embeddings of all users, then all items, as two ``(n_users + n_items, dim)`` tables."""
        ego = torch.cat([self._full(self.user), self._full(self.item)])
        if self.backbone == "mf":
            return ego, ego
        return _LightGCNPropagation.apply(ego, adj, self.n_layers), ego

    def loss(self, users, pos, neg, reg: float, adj: Optional[torch.Tensor],
             denominator: Optional[int] = None) -> torch.Tensor:
        """BPR loss of a batch plus ``reg * (|u|^2 + |i|^2 + |j|^2) / 2 / batch`` on the ego embeddings.

        ``denominator``: divide the summed terms by it instead of the batch size (a data-parallel rank's
        share of a global batch divides by the global batch size, so the ranks' losses add up to its mean).
        """
        size = users.numel() if denominator is None else denominator
        if self.backbone == "mf":
            eu = self._rows(self.user, users)
            items = self._rows(self.item, torch.cat([pos, neg]))
            ei, ej = items[: pos.numel()], items[pos.numel():]
            ranking = _ranking_loss((eu * ei).sum(1), (eu * ej).sum(1), denominator)
            penalty = (eu.pow(2).sum() + ei.pow(2).sum() + ej.pow(2).sum()) / 2 / size
            return ranking + reg * penalty
        final, ego = self._stacked(adj)
        # one gather from the stacked table (users first), so the backward scatters into one zero table
        rows = torch.cat([users, pos + self.n_users, neg + self.n_users])
        fu, fi, fj = final[rows].view(3, users.numel(), -1).unbind(0)
        ranking = _ranking_loss((fu * fi).sum(1), (fu * fj).sum(1), denominator)
        penalty = _SquaredRowNorms.apply(ego)[rows].sum()   # all rows' squared norms, then the batch's
        return ranking + reg * penalty / 2 / size

    def n_active(self) -> int:
        if self.storage == "table":
            return self.user.budget + self.item.budget
        return int((self.user.weight != 0).sum() + (self.item.weight != 0).sum())


def training_state_bytes(net: nn.Module, optimizer: torch.optim.Optimizer,
                          engine: Optional[DynamicSparsity]) -> int:
    """Bytes held between steps: parameters, their gradients, optimizer state, index buffers and masks."""
    total = sum(2 * p.numel() * p.element_size() for p in net.parameters())      # weights and gradients
    total += sum(b.numel() * b.element_size() for b in net.buffers())
    for state in optimizer.state.values():
        total += sum(v.numel() * v.element_size() for v in state.values() if isinstance(v, torch.Tensor))
    if engine is not None:
        total += sum(target.state_bytes() for target in engine.targets)
    return int(total)

