"""ProNE's spectral propagation: a band-pass filter of the graph's spectrum applied to any node
embedding (Zhang et al., *ProNE: Fast and Scalable Network Representation Learning*, IJCAI 2019).

Used by ``FastRP(spectral_propagation=True)`` and available alone as
:func:`graphkit.spectral_propagation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import iv

from graphkit._fastrp_rows import sparse_dense_product
from graphkit.io import as_graph
from graphkit.ops import normalized_adjacency
from tensorkit import backend

__all__ = ["spectral_propagation"]


def spectral_propagation(graph: Any, embedding: Any, *, order: int = 10, mu: float = 0.2,
                         theta: float = 0.5) -> Any:
    """Filter ``embedding`` by a Gaussian band-pass of the graph's spectrum, as ProNE does.

    With ``P`` the random-walk matrix of ``A + I``, ``L = I - P`` and ``M = L - mu I``, the filter
    ``exp(-theta (M^2 / 2 - I))`` (large on the eigenvalues of ``L`` near ``mu``) is applied through
    ``order`` terms of its Chebyshev series, whose coefficients are the modified Bessel functions
    ``I_i(theta)``; the result ``(A + I)(E - filtered E)`` is factored by an SVD into ``U sqrt(S)``,
    and each row is scaled to unit L2 norm. This follows the authors' reference code
    (THUDM/ProNE, ``chebyshev_gaussian``), including its defaults.

    Parameters
    ----------
    graph : graph-like
        Anything :func:`graphkit.as_graph` takes. Row ``i`` of ``embedding`` is node
        ``as_graph(graph).node_ids[i]``: the order of a :class:`~graphkit.FastRP` fitted on
        the same graph (its ``node_ids_``).
    embedding : array-like or torch.Tensor of shape (n_nodes, d)
    order : int, default=10
        Terms of the Chebyshev series, at least 2 (``order - 1`` products with ``M^2``).
    mu, theta : float, default=0.2, 0.5
        The band's centre in the Laplacian's spectrum (which lies in [0, 2]) and its sharpness.

    Returns
    -------
    numpy.ndarray or torch.Tensor of shape (n_nodes, d)
        Like ``embedding`` (a tensor stays on its device), in its dtype.

    Examples
    --------
    >>> import networkx as nx
    >>> from graphkit import FastRP, spectral_propagation
    >>> graph = nx.karate_club_graph()
    >>> embedding = FastRP(16, random_state=0, verbose=0).fit_transform(graph)
    >>> spectral_propagation(graph, embedding).shape
    (34, 16)
    """
    if int(order) != order or order < 2:
        raise ValueError(f"order must be an integer of at least 2; got {order!r}")
    adjacency = as_graph(graph).adjacency
    values = backend.as_tensor(embedding)
    if values.ndim != 2 or values.shape[0] != adjacency.shape[0]:
        raise ValueError(f"embedding must have shape (n_nodes={adjacency.shape[0]}, d); got {tuple(values.shape)}")
    filtered = propagate(adjacency, values, int(order), float(mu), float(theta))
    return backend.to_output(backend.to_numpy(filtered) if not isinstance(embedding, torch.Tensor) else filtered,
                             like=embedding)


def propagate(adjacency: sp.spmatrix, embedding: torch.Tensor, order: int, mu: float, theta: float) -> torch.Tensor:
    """The functional core of :func:`spectral_propagation` on torch tensors (a new tensor)."""
    device, dtype = embedding.device, embedding.dtype
    with_loops = sp.csr_matrix(adjacency, dtype=np.float64) + sp.identity(adjacency.shape[0], format="csr")
    walk = backend.as_sparse_tensor(normalized_adjacency(with_loops, "random_walk"), device=device, dtype=dtype)
    loops = backend.as_sparse_tensor(with_loops, device=device, dtype=dtype)
    spare = torch.empty_like(embedding)

    def shifted_laplacian(x: torch.Tensor) -> torch.Tensor:   # M x = (1 - mu) x - P x
        return torch.sub(x, sparse_dense_product(walk, x, out=spare), alpha=1.0).sub_(x, alpha=mu)

    def chebyshev_argument(x: torch.Tensor) -> torch.Tensor:   # X x = M^2 x / 2 - x
        return shifted_laplacian(shifted_laplacian(x)).mul_(0.5).sub_(x)

    previous, current = embedding, chebyshev_argument(embedding)
    filtered = embedding * float(iv(0, theta)) - current * float(2 * iv(1, theta))
    for term in range(2, order):
        previous, current = current, chebyshev_argument(current).mul_(2).sub_(previous)
        filtered.add_(current, alpha=float(2 * (-1) ** term * iv(term, theta)))
    product = torch.mm(loops, embedding - filtered)
    left, singular, _ = torch.linalg.svd(product, full_matrices=False)
    result = left * singular.sqrt()
    norms = torch.linalg.vector_norm(result, dim=1, keepdim=True)
    return result.div_(norms.masked_fill_(norms == 0, 1.0))
