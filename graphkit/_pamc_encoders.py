"""PamC's encoders, its pretraining decoder and the node features the networks read.

:class:`MLPEncoder` and :class:`GCNEncoder` are importable from :mod:`graphkit.pamc`.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import warnings
from typing import Any, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GCNEncoder", "MLPEncoder"]

# Dense features with fewer non-zeros than this share go through a sparse first layer on the CPU.
_SPARSE_FEATURE_DENSITY = 0.05


def _linear_stack(sizes: Sequence[int]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))


class MLPEncoder(nn.Module):
    """The reference encoder: ``n_input -> hidden... -> n_z``, ReLU between, linear output.

    With ``hidden=(500, 500, 2000)`` and ``n_z=10`` this is SDCN's autoencoder's encoder. Accepts
    a sparse CSR ``x`` (the first layer is then a sparse product).
    """

    def __init__(self, n_input: int, hidden: Sequence[int] = (500, 500, 2000), n_z: int = 10):
        super().__init__()
        self.layers = _linear_stack([n_input, *hidden, n_z])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


class GCNEncoder(nn.Module):
    """A GCN encoder (PyTorch Geometric ``GCNConv`` layers) with the MLP encoder's sizes.

    An extension: the reference encoder is the MLP, where the graph enters only through the loss.
    Here every layer also propagates over the graph (symmetric normalisation with self loops).
    """

    def __init__(self, n_input: int, hidden: Sequence[int] = (500, 500, 2000), n_z: int = 10):
        super().__init__()
        from torch_geometric.nn import GCNConv

        sizes = [n_input, *hidden, n_z]
        self.layers = nn.ModuleList(GCNConv(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: Optional[torch.Tensor] = None):
        for position, layer in enumerate(self.layers):
            x = layer(x, edge_index, edge_weight)
            if position < len(self.layers) - 1:
                x = F.relu(x)
        return x


class _MLPDecoder(nn.Module):
    def __init__(self, n_z: int, hidden: Sequence[int], n_output: int):
        super().__init__()
        self.layers = _linear_stack([n_z, *hidden, n_output])

    def forward(self, z):
        for layer in self.layers[:-1]:
            z = F.relu(layer(z))
        return self.layers[-1](z)


def _takes_graph(module: nn.Module) -> bool:
    """Whether a module's forward takes ``(x, edge_index, ...)`` rather than ``(x)``."""
    if isinstance(module, GCNEncoder):
        return True
    if isinstance(module, MLPEncoder):
        return False
    parameters = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return len(parameters) >= 2


# -- features -----------------------------------------------------------------------------------

class _Features:
    """Node features on the CPU (SciPy CSR or dense float NumPy), served as torch tensors.

    Sparse features (or dense ones with under 5% non-zeros) go through a sparse first layer on the
    CPU; on a GPU they are made dense.
    """

    def __init__(self, X: Any, sparse: bool, device: torch.device, dtype: torch.dtype):
        self.sparse = sparse and device.type == "cpu"
        self.device, self.dtype = device, dtype
        if self.sparse:
            self.matrix = sp.csr_matrix(X, dtype=np.float32 if dtype == torch.float32 else np.float64)
            self.matrix.sort_indices()
        else:
            self.matrix = np.array(X.toarray() if sp.issparse(X) else X,
                                   dtype=np.float32 if dtype == torch.float32 else np.float64)
        self.n_rows = self.matrix.shape[0]
        self._all = None

    @staticmethod
    def wants_sparse(X: Any) -> bool:
        n_entries = X.shape[0] * X.shape[1]
        if n_entries == 0:
            return False
        nnz = X.nnz if sp.issparse(X) else int(np.count_nonzero(X))
        return nnz / n_entries < _SPARSE_FEATURE_DENSITY

    def _tensor(self, block) -> torch.Tensor:
        if self.sparse:
            block = sp.csr_matrix(block)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                return torch.sparse_csr_tensor(
                    torch.from_numpy(block.indptr.astype(np.int64)), torch.from_numpy(block.indices.astype(np.int64)),
                    torch.from_numpy(block.data), size=block.shape, dtype=self.dtype, check_invariants=False,
                )
        return torch.as_tensor(block, device=self.device, dtype=self.dtype)

    def all(self) -> torch.Tensor:
        if self._all is None:
            self._all = self._tensor(self.matrix)
        return self._all

    def rows(self, index: np.ndarray) -> torch.Tensor:
        return self._tensor(self.matrix[index])

    def dense_rows(self, index: np.ndarray) -> torch.Tensor:
        block = self.matrix[index]
        block = block.toarray() if sp.issparse(block) else block
        return torch.as_tensor(block, device=self.device, dtype=self.dtype)


def _check_scale(X: Any, dtype: torch.dtype) -> None:
    """Refuse features so large that squared distances between rows overflow ``dtype``.

    PamC and MLC square differences of the features, or of activations that grow with them:
    kNN graphs and views, the pretraining's reconstruction error, Student's t assignments,
    BatchNorm's variances. Their networks are not scale invariant, so the features are not
    rescaled; values above ``sqrt(max / (4 n_features))`` (``max`` the largest float of
    ``dtype``), where a squared distance between two rows could overflow, are refused.
    """
    largest = float(max(abs(X.max()), abs(X.min())))
    limit = float(np.sqrt(torch.finfo(dtype).max / (4 * X.shape[1])))
    if largest > limit:
        raise ValueError(
            f"X holds values up to {largest:.3g}, beyond {limit:.3g}, where squared distances between its rows "
            f"({X.shape[1]} features) overflow {str(dtype).replace('torch.', '')}: scale X (e.g. with "
            f"sklearn.preprocessing.StandardScaler){_or_float64(dtype)}"
        )


def _or_float64(dtype: torch.dtype) -> str:
    """The suggestion of float64 in an overflow message, where ``dtype`` is narrower."""
    return "" if dtype == torch.float64 else ", or use dtype='float64'"


def _module_on(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` itself when its tensors are on ``device`` (or it has none), else a copy moved there."""
    tensor = next(itertools.chain(module.parameters(), module.buffers()), None)
    if tensor is None or (tensor.device.type == device.type
                          and (device.index is None or tensor.device.index == device.index)):
        return module
    return copy.deepcopy(module).to(device)
