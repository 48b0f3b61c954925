"""Kronecker-structured linear algebra, never forming the Kronecker product.

For a dictionary ``A = A_1 ⊗ ... ⊗ A_K`` (``A_k`` of shape ``m_k x n_k``, ``m = Π m_k``,
``n = Π n_k``), vectors are ordered as the rows and columns of ``np.kron(A_1, ..., A_K)``: a vector
of length ``n`` is the C-order flattening of an ``n_1 x ... x n_K`` tensor, and ``A x`` is that
tensor's mode products with every ``A_k``. Everything goes through tensorly's pytorch backend, so
it runs on the device of its inputs.

- :func:`kron_matvec`: ``A x`` and ``A^H y`` in ``O(Σ_k m_k n_k · Π ...)`` mode products.
- :func:`kron_vector`: ``v_1 ⊗ ... ⊗ v_K``.
- :class:`KroneckerGram`: the eigendecomposition of ``σ² I + ⊗_k A_k diag(γ_k) A_k^H`` from the
  small ``m_k x m_k`` blocks, and with it solves, log-determinants and the posterior of sparse
  Bayesian learning (:func:`kron_sbl_posterior`): mean and covariance diagonal in
  ``O(Σ m_k³ + n·m)`` time and ``O(n + Σ m_k²)`` memory.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> A1, A2, x = rng.standard_normal((3, 4)), rng.standard_normal((2, 5)), rng.standard_normal(20)
>>> bool(np.allclose(kron_matvec([A1, A2], x).numpy(), np.kron(A1, A2) @ x))
True
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import torch

from tensorkit import backend

__all__ = ["KroneckerGram", "SBLPosterior", "kron_matvec", "kron_sbl_posterior", "kron_vector"]


def _as_factor_tensors(factors: Sequence[Any], device: Any = None, dtype: Any = None) -> list[torch.Tensor]:
    tensors = [backend.as_tensor(factor, device=device, dtype=dtype) for factor in factors]
    if not tensors:
        raise ValueError("factors must hold at least one matrix")
    for k, tensor in enumerate(tensors):
        if tensor.ndim != 2:
            raise ValueError(f"factor {k} must be a 2-D matrix; got shape {tuple(tensor.shape)}")
    return tensors


def _mode_products(tensor: torch.Tensor, matrices: Sequence[torch.Tensor]) -> torch.Tensor:
    """``tensor ×_1 M_1 ×_2 M_2 ... ×_K M_K``."""
    with backend.tensorly_backend() as tl:
        return tl.tenalg.multi_mode_dot(tensor, list(matrices))


def kron_matvec(factors: Sequence[Any], x: Any, adjoint: bool = False) -> torch.Tensor:
    """``(A_1 ⊗ ... ⊗ A_K) x``, or ``(A_1 ⊗ ... ⊗ A_K)^H x`` with ``adjoint=True``.

    Parameters
    ----------
    factors : sequence of array-like
        The matrices ``A_k`` (NumPy, SciPy or torch), all on one device.
    x : array-like of shape (n_1 ⋯ n_K,), or (m_1 ⋯ m_K,) with ``adjoint=True``
    adjoint : bool, default=False

    Returns
    -------
    torch.Tensor
        On the device of the factors when they are tensors; dtype promoted from both inputs.
    """
    mats = _as_factor_tensors(factors)
    vector = backend.as_tensor(x, device=mats[0].device)
    dtype = torch.promote_types(vector.dtype, mats[0].dtype)
    mats = [m.to(dtype) for m in mats]
    if adjoint:
        mats = [m.conj().T for m in mats]
    shape = [m.shape[1] for m in mats]
    if vector.ndim != 1 or vector.numel() != _product(shape):
        raise ValueError(f"x must be a vector of length {_product(shape)}; got shape {tuple(vector.shape)}")
    return _mode_products(vector.to(dtype).reshape(shape), mats).reshape(-1)


def kron_vector(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``v_1 ⊗ ... ⊗ v_K`` as one vector (``np.kron`` order)."""
    result = vectors[0]
    for vector in vectors[1:]:
        result = torch.outer(result, vector).reshape(-1)
    return result


def _product(values: Sequence[int]) -> int:
    result = 1
    for value in values:
        result *= int(value)
    return result


class KroneckerGram:
    """``C = σ² I + ⊗_k A_k diag(γ_k) A_k^H`` through the eigendecompositions of its small blocks.

    With ``B_k = A_k diag(γ_k) A_k^H = U_k diag(p_k) U_k^H``,
    ``C = (⊗ U_k) diag(σ² + ⊗ p_k) (⊗ U_k)^H``: solves, the log-determinant and the diagonal
    quadratic forms ``a_i^H C^{-1} a_i`` of all columns need only the ``m_k x m_k``
    eigendecompositions and mode products.

    Parameters
    ----------
    factors : sequence of torch.Tensor
        ``A_k`` of shape ``(m_k, n_k)``, real or complex, on one device.
    gammas : sequence of torch.Tensor
        Non-negative ``γ_k`` of length ``n_k``.
    noise_var : float
        ``σ² > 0``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> A = [rng.standard_normal((3, 5)), rng.standard_normal((4, 2))]
    >>> g = [rng.random(5), rng.random(2)]
    >>> gram = KroneckerGram([torch.tensor(a) for a in A], [torch.tensor(v) for v in g], noise_var=0.1)
    >>> dense = np.kron(A[0] @ np.diag(g[0]) @ A[0].T, A[1] @ np.diag(g[1]) @ A[1].T) + 0.1 * np.eye(12)
    >>> y = rng.standard_normal(12)
    >>> bool(np.allclose(gram.solve(torch.tensor(y)).numpy(), np.linalg.solve(dense, y)))
    True
    """

    def __init__(self, factors: Sequence[torch.Tensor], gammas: Sequence[torch.Tensor], noise_var: float):
        self.factors = list(factors)
        self.noise_var = float(noise_var)
        self.eigenvectors, eigenvalues = [], []
        for factor, gamma in zip(self.factors, gammas):
            block = (factor * gamma.to(factor.dtype)) @ factor.conj().T
            values, vectors = torch.linalg.eigh(block)
            eigenvalues.append(values.clamp_min(0))
            self.eigenvectors.append(vectors)
        self.shape = [factor.shape[0] for factor in self.factors]
        self.inverse_diagonal = 1.0 / (kron_vector(eigenvalues) + self.noise_var)

    def solve(self, y: torch.Tensor) -> torch.Tensor:
        """``C^{-1} y``."""
        rotated = _mode_products(y.reshape(self.shape), [u.conj().T for u in self.eigenvectors])
        scaled = rotated * self.inverse_diagonal.reshape(self.shape)
        return _mode_products(scaled, self.eigenvectors).reshape(-1)

    def logdet(self) -> float:
        """``log det C``."""
        return float(-torch.log(self.inverse_diagonal).sum())

    def column_quadratic_forms(self) -> torch.Tensor:
        """``a_i^H C^{-1} a_i`` for every column ``a_i`` of ``⊗ A_k`` (length ``n``)."""
        weights = [(u.conj().T @ a).abs().square().T for u, a in zip(self.eigenvectors, self.factors)]
        return _mode_products(self.inverse_diagonal.reshape(self.shape), weights).reshape(-1)


class SBLPosterior(NamedTuple):
    """The Gaussian posterior of ``x`` in ``y = A x + noise``, ``x ~ N(0, diag(γ))``.

    Attributes
    ----------
    mean : torch.Tensor
    variance : torch.Tensor
        The diagonal of the posterior covariance (real).
    quadratic : torch.Tensor
        ``a_i^H C^{-1} a_i`` (so that ``variance = γ - γ² quadratic``).
    objective : float
        ``log det C + y^H C^{-1} y``, the SBL cost (minus twice the log evidence, up to a constant).
    """

    mean: torch.Tensor
    variance: torch.Tensor
    quadratic: torch.Tensor
    objective: float


def kron_sbl_posterior(
    factors: Sequence[torch.Tensor], gammas: Sequence[torch.Tensor], noise_var: float, y: torch.Tensor
) -> SBLPosterior:
    """Posterior mean and covariance diagonal of SBL with dictionary ``⊗ A_k`` and prior ``⊗ γ_k``.

    ``μ = Γ A^H C^{-1} y`` and ``diag Σ = γ - γ² ⊙ diag(A^H C^{-1} A)`` with
    ``C = σ² I + A Γ A^H`` (Woodbury), all through :class:`KroneckerGram`: no ``n x n`` or ``m x m``
    matrix is formed.
    """
    gram = KroneckerGram(factors, gammas, noise_var)
    gamma = kron_vector(list(gammas))
    solved = gram.solve(y)
    mean = gamma.to(solved.dtype) * kron_matvec(factors, solved, adjoint=True)
    quadratic = gram.column_quadratic_forms()
    variance = gamma - gamma.square() * quadratic
    objective = gram.logdet() + float(torch.real(torch.vdot(y, solved)))
    return SBLPosterior(mean, variance, quadratic, objective)
