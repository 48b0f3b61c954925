"""Manifold linearizing and clustering (MLC): MCR² with a doubly stochastic membership.

Tianjiao Ding, Shengbang Tong, Kwan Ho Ryan Chan, Xili Dai, Yi Ma and Benjamin D. Haeffele,
"Unsupervised Manifold Linearizing and Clustering", ICCV 2023 (arXiv:2301.01805).

A shared network maps each sample to a feature ``z`` (feature head) and a cluster feature ``c``
(cluster head), both on the unit sphere. On each mini-batch the membership is
``Γ = Sinkhorn(C Cᵀ / η)``, a doubly stochastic matrix (rows and columns sum to one), and the
network maximises the coding rate reduction

    ΔR(Z, Γ) = R(Z) − R_c(Z, Γ),
    R(Z)      = ½ logdet(I + d / (n ε²) Zᵀ Z),
    R_c(Z, Γ) = Σ_j (tr Γ_j / 2n) logdet(I + d / (tr Γ_j ε²) Zᵀ Γ_j Z),  Γ_j = diag(row j of Γ),

so that the points each point is a member with span a low-dimensional subspace, and different
groups span different subspaces. Labels are the spectral clustering of ``Γ``.

The functional core is :func:`coding_rate`, :func:`compressed_coding_rate`,
:func:`rate_reduction`, :func:`log_sinkhorn`, :func:`spectral_labels` and :class:`MLCNetwork`;
:class:`ManifoldClustering` (alias :data:`MLC`) is the scikit-learn estimator on top.
Default values follow the authors' group's follow-up code (CPP, Chu et al., arXiv:2306.05272),
which implements the same objective: ``ε² = 0.1``, ``η`` in 0.12-0.175 (0.15 here), 5 log-domain Sinkhorn
iterations, a ``½‖Γ‖²_F`` weight of 0.05, heads ``Linear–BN–ReLU–Linear–ReLU–Linear``, and a
warm-up with the total coding rate alone.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from graphkit.io import features_and_graph
from graphkit.metrics import clustering_scores
from graphkit.ops import nearest_neighbors
from graphkit._pamc_encoders import _check_scale, _module_on, _or_float64
from tensorkit import backend
from tensorkit.base import StrOptions, TorchEstimator, integers, reals
from tensorkit.validation import check_finite_result, real_dtype, reject_complex

__all__ = ["MLC", "MLCNetwork", "ManifoldClustering", "coding_rate", "compressed_coding_rate", "log_sinkhorn",
           "membership", "rate_reduction", "spectral_labels", "symmetric_log_sinkhorn"]

_INFERENCE_ROWS = 8192
_SINKHORN_ROWS = 512
_ASSIGN_ENTRIES = 2**22


# -- coding rates ---------------------------------------------------------------------------------

def _logdet_spd(matrix: torch.Tensor) -> torch.Tensor:
    """``logdet`` of (a batch of) symmetric positive definite matrices, by Cholesky."""
    factor, info = torch.linalg.cholesky_ex(matrix)
    if bool((info != 0).any()):  # not numerically positive definite: fall back to slogdet
        return torch.linalg.slogdet(matrix)[1]
    return 2.0 * torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1)


def _wide(z: torch.Tensor, float64: bool) -> torch.Tensor:
    return z.double() if float64 and z.dtype != torch.float64 else z


def coding_rate(z: torch.Tensor, eps: float = 0.1, float64: bool = True) -> torch.Tensor:
    """The coding rate ``R(Z) = ½ logdet(I + d / (n ε²) Zᵀ Z)`` of the rows of ``z``.

    Parameters
    ----------
    z : torch.Tensor of shape (n, d)
        One sample per row.
    eps : float, default=0.1
        ``ε²``, the squared distortion (as in the CPP code, the argument is already squared).
    float64 : bool, default=True
        Compute the ``d × d`` Gram matrix and its logdet in float64 (then cast back to ``z``'s dtype).

    Returns
    -------
    torch.Tensor, a scalar

    Examples
    --------
    >>> z = torch.eye(4)
    >>> round(float(coding_rate(z, eps=0.5)), 4)  # ½ · 4 · log(1 + 4 / (4 · 0.5))
    2.1972
    """
    n, d = z.shape
    w = _wide(z, float64)
    gram = w.T @ w
    identity = torch.eye(d, dtype=w.dtype, device=w.device)
    return (0.5 * _logdet_spd(identity + (d / (n * eps)) * gram)).to(z.dtype)


def compressed_coding_rate(z: torch.Tensor, gamma: torch.Tensor, eps: float = 0.1,
                           float64: bool = True) -> torch.Tensor:
    """``R_c(Z, Γ) = Σ_j (tr Γ_j / 2n) logdet(I + d / (tr Γ_j ε²) Zᵀ Γ_j Z)``, ``Γ_j = diag(Γ[j])``.

    Each row ``j`` of the membership ``Γ`` is a soft group (for a doubly stochastic ``Γ``, the
    points that ``j`` belongs with); for a 0/1 ``Γ`` with one row per cluster this is the
    compressed coding rate of MCR² (Yu et al., NeurIPS 2020). Costs ``O(m n d²)`` time and
    ``O(m d²)`` memory for ``m`` rows.

    Parameters
    ----------
    z : torch.Tensor of shape (n, d)
    gamma : torch.Tensor of shape (m, n)
        Non-negative membership weights.
    eps : float, default=0.1
        ``ε²``.
    float64 : bool, default=True

    Returns
    -------
    torch.Tensor, a scalar
    """
    n, d = z.shape
    if gamma.ndim != 2 or gamma.shape[1] != n:
        raise ValueError(f"gamma must have shape (m, {n}) for z of shape {tuple(z.shape)}; got {tuple(gamma.shape)}")
    w = _wide(z, float64)
    g = gamma.to(w.dtype)
    traces = g.sum(1).clamp_min(1e-12)
    # Zᵀ diag(Γ_j) Z for every row j at once: (m, d, d)
    grams = torch.einsum("jn,na,nb->jab", g, w, w)
    identity = torch.eye(d, dtype=w.dtype, device=w.device)
    logdets = _logdet_spd(identity + (d / (traces * eps)).view(-1, 1, 1) * grams)
    return ((traces * logdets).sum() / (2 * n)).to(z.dtype)


def rate_reduction(z: torch.Tensor, gamma: torch.Tensor, eps: float = 0.1, float64: bool = True) -> dict:
    """``ΔR = R(Z) − R_c(Z, Γ)`` with its two terms.

    Returns
    -------
    dict
        ``{"delta": ΔR, "R": R(Z), "Rc": R_c(Z, Γ)}``, scalar tensors (differentiable).
    """
    total = coding_rate(z, eps, float64)
    compressed = compressed_coding_rate(z, gamma, eps, float64)
    return {"delta": total - compressed, "R": total, "Rc": compressed}


# -- doubly stochastic membership -----------------------------------------------------------------

def log_sinkhorn(log_kernel: torch.Tensor, n_iter: int = 5, tol: Optional[float] = None,
                 return_potentials: bool = False):
    """Sinkhorn–Knopp in the log domain: ``log Γ`` with ``Γ = diag(eᶠ) exp(log_kernel) diag(eᵍ)``.

    Alternately makes the rows and the columns of ``Γ`` sum to one (uniform marginals, a doubly
    stochastic matrix); every step is a ``logsumexp``, so no ``exp`` overflows for small ``η``.
    Differentiable (autograd runs through the iterations).

    Parameters
    ----------
    log_kernel : torch.Tensor of shape (n, n)
        ``C Cᵀ / η``.
    n_iter : int, default=5
        Iterations (each one a row and a column update). With ``tol``, the most iterations.
    tol : float, optional
        Stop early once every row sum is within ``tol`` of one (the columns sum to one exactly
        after each column update).
    return_potentials : bool, default=False
        Also return ``f`` and ``g``.

    Returns
    -------
    log_gamma : torch.Tensor of shape (n, n)
    f, g : torch.Tensor of shape (n,), when ``return_potentials``

    Examples
    --------
    >>> c = torch.nn.functional.normalize(torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    >>> gamma = log_sinkhorn(c @ c.T / 0.2, n_iter=200, tol=1e-6).exp()
    >>> bool(torch.allclose(gamma.sum(0), torch.ones(6), atol=1e-5)), bool(torch.allclose(gamma.sum(1), torch.ones(6), atol=1e-5))
    (True, True)
    """
    if log_kernel.ndim != 2 or log_kernel.shape[0] != log_kernel.shape[1]:
        raise ValueError(f"log_kernel must be a square matrix; got shape {tuple(log_kernel.shape)}")
    f = torch.zeros(log_kernel.shape[0], dtype=log_kernel.dtype, device=log_kernel.device)
    g = torch.zeros_like(f)
    for _ in range(max(int(n_iter), 1)):
        f = -torch.logsumexp(log_kernel + g.unsqueeze(0), dim=1)
        g = -torch.logsumexp(log_kernel + f.unsqueeze(1), dim=0)
        if tol is not None:
            with torch.no_grad():
                rows = torch.logsumexp(log_kernel + f.unsqueeze(1) + g.unsqueeze(0), dim=1).exp()
                if float((rows - 1).abs().max()) < tol:
                    break
    log_gamma = log_kernel + f.unsqueeze(1) + g.unsqueeze(0)
    return (log_gamma, f, g) if return_potentials else log_gamma


def symmetric_log_sinkhorn(log_kernel: torch.Tensor, n_iter: int = 1000, tol: float = 1e-6):
    """Sinkhorn for a symmetric kernel: ``log Γ`` with ``Γ = diag(eᶠ) exp(log_kernel) diag(eᶠ)``.

    For a symmetric ``K`` the two potentials of :func:`log_sinkhorn` coincide at the fixed point
    ``f_i = −log Σ_j exp(K_ij + f_j)``; the damped iteration ``f ← ½ (f − logsumexp(K + f))``
    (Knight, 2008) reaches it in far fewer steps than alternating rows and columns, and gives an
    exactly symmetric ``Γ``. Stops once every row sum is within ``tol`` of one.

    Returns
    -------
    log_gamma : torch.Tensor of shape (n, n)
    f : torch.Tensor of shape (n,)
    """
    if log_kernel.ndim != 2 or log_kernel.shape[0] != log_kernel.shape[1]:
        raise ValueError(f"log_kernel must be a square matrix; got shape {tuple(log_kernel.shape)}")
    def row_logsumexp(shift: torch.Tensor) -> torch.Tensor:
        # in blocks of rows, so that the temporaries stay a small slice of the n x n kernel
        return torch.cat([torch.logsumexp(log_kernel[start:start + _SINKHORN_ROWS] + shift, dim=1)
                          for start in range(0, log_kernel.shape[0], _SINKHORN_ROWS)])

    f = -row_logsumexp(torch.zeros_like(log_kernel[0]))
    for _ in range(max(int(n_iter), 1)):
        lse = row_logsumexp(f.unsqueeze(0))
        if float((torch.exp(f + lse) - 1).abs().max()) < tol:
            break
        f = 0.5 * (f - lse)
    return (log_kernel + f.unsqueeze(1)).add_(f.unsqueeze(0)), f


def membership(c: torch.Tensor, eta: float = 0.175, n_iter: int = 5, tol: Optional[float] = None) -> torch.Tensor:
    """The doubly stochastic membership ``Γ = Sinkhorn(C Cᵀ / η)`` of unit-norm cluster features.

    Parameters
    ----------
    c : torch.Tensor of shape (n, d)
    eta : float, default=0.175
        Entropy coefficient: larger spreads ``Γ`` (towards ``1/n``), smaller sharpens it
        (towards a permutation).
    n_iter, tol : see :func:`log_sinkhorn`

    Returns
    -------
    torch.Tensor of shape (n, n), non-negative, rows and columns summing to one
    """
    return log_sinkhorn(c @ c.T / eta, n_iter=n_iter, tol=tol).exp()


def spectral_labels(gamma: Any, n_clusters: int, n_init: int = 10, random_state: Any = None) -> np.ndarray:
    """Spectral clustering of an affinity ``Γ`` (Ng, Jordan and Weiss, 2001).

    ``W = (Γ + Γᵀ) / 2``; the top ``n_clusters`` eigenvectors of ``D^{-1/2} W D^{-1/2}`` (those
    of the smallest eigenvalues of the normalised Laplacian), rows scaled to unit norm, then
    k-means.

    Parameters
    ----------
    gamma : torch.Tensor or ndarray of shape (n, n)
    n_clusters : int
    n_init : int, default=10
        k-means restarts.
    random_state : None, int or numpy.random.RandomState

    Returns
    -------
    ndarray of shape (n,), int64
    """
    w = torch.as_tensor(gamma, dtype=torch.float64)
    w = (w + w.T).mul_(0.5)  # the one n x n copy; everything below is in place
    scale = w.sum(1).clamp_min(1e-12).rsqrt()
    normalized = w.mul_(scale.unsqueeze(1)).mul_(scale.unsqueeze(0))
    rng = backend.check_random_state(random_state).numpy
    if normalized.shape[0] <= 4 * n_clusters + 50:
        top = torch.linalg.eigh(normalized)[1][:, -n_clusters:].cpu().numpy()
    else:  # Lanczos for the top eigenvectors only (a dense eigh is O(n³))
        from scipy.sparse.linalg import eigsh

        dense = normalized.cpu().numpy()
        top = eigsh(dense, k=n_clusters, which="LA", v0=rng.uniform(0.5, 1.5, dense.shape[0]), tol=1e-8)[1]
    embedding = top / np.maximum(np.linalg.norm(top, axis=1, keepdims=True), 1e-12)
    kmeans = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=rng).fit(embedding)
    return kmeans.labels_.astype(np.int64)


# -- the network ----------------------------------------------------------------------------------

def _head(hidden: int, n_components: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_components))


class MLCNetwork(nn.Module):
    """The shared backbone with a feature head and a cluster head, outputs on the unit sphere.

    ``backbone: Linear(n_input, hidden)–BN–ReLU``; each head (CPP's):
    ``Linear–BN–ReLU–Linear–ReLU–Linear(hidden, n_components)``; both outputs are L2-normalised.
    The backbone stands in for the ResNet-18 of the paper; for image data, give features from a
    pretrained backbone as ``X``.
    """

    def __init__(self, n_input: int, hidden: int = 512, n_components: int = 32):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(n_input, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.feature_head = _head(hidden, n_components)
        self.cluster_head = _head(hidden, n_components)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)
        return F.normalize(self.feature_head(h), dim=1), F.normalize(self.cluster_head(h), dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.feature_head(self.backbone(x)), dim=1)

    def copy_feature_head(self) -> None:
        """The one-shot initialisation of MLC: the cluster head starts as the feature head."""
        self.cluster_head.load_state_dict(self.feature_head.state_dict())


# -- the estimator --------------------------------------------------------------------------------

class ManifoldClustering(ClusterMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, TorchEstimator):
    """Manifold linearizing and clustering (MLC): MCR² with a doubly stochastic membership.

    Ding, Tong, Chan, Dai, Ma and Haeffele, "Unsupervised Manifold Linearizing and Clustering",
    ICCV 2023 (arXiv:2301.01805). :meth:`fit`:

    1. TCR warm-up: ``warmup_epochs`` epochs of the backbone and feature head maximising the
       total coding rate ``R(Z)`` alone (mini-batches of ``batch_size``), plus the view
       invariance term below;
    2. the feature head's weights are copied into the cluster head (the paper's one-shot
       initialisation of the membership);
    3. ``n_epochs`` epochs maximising ``ΔR(Z, Γ) − gamma · ½‖Γ‖²_F`` with
       ``Γ = Sinkhorn(C Cᵀ / eta)`` computed per mini-batch (no ``n × n`` parameters), plus the
       view invariance term;
    4. the labels: spectral clustering (:func:`spectral_labels`) of ``Γ`` on the training set,
       computed with Sinkhorn run to convergence.

    Where this differs from the paper and the CPP code:

    - ``X`` is a feature matrix; a small MLP backbone (:class:`MLCNetwork`) replaces ResNet-18.
    - Views. On images the paper trains on augmented copies: ``z̄`` (and ``c̄``), the normalised
      mean of a sample's features over its augmentations, enters ``R``, ``R_c`` and ``Γ``, and
      an invariance term ``invariance · mean_a ⟨z_a, z̄⟩`` pulls each copy towards the mean (the
      augmentation constraint of NMCE, Li et al., arXiv:2201.10000, on which MLC builds). A
      feature matrix has no augmentations; with ``augment="knn"`` (the default) each of
      ``n_views`` views of a sample is the sample itself or one of its ``n_neighbors`` nearest
      neighbours in ``X``, drawn uniformly, so the constraint becomes locality (neighbours
      belong together); evidence: docs/mlc.md. ``augment=None`` is the plain objective.
    - Adam instead of SGD. The ``½‖Γ‖²_F`` term is read as a penalty (it discourages a
      permutation-like ``Γ``), as CPP's default weight of 0.05 suggests; ``Γ``'s diagonal (a
      point's membership with itself) is kept.
    - The training batches use ``sinkhorn_iter`` alternating Sinkhorn iterations (not converged,
      as in CPP); the final ``Γ`` uses the symmetric Sinkhorn iteration
      (:func:`symmetric_log_sinkhorn`) run to row sums within 1e-6 of one, so ``membership_`` is
      exactly symmetric and doubly stochastic.
    - Scaling: CPP builds one dense ``Γ`` over 10 batches (15k × 15k). Here the final ``Γ`` is
      built on at most ``spectral_samples`` points (all of them when ``n`` is not larger);
      beyond that, a random subset of that size is clustered spectrally and every other point is
      given the cluster that holds most of its Sinkhorn membership row against the subset
      (the row ``exp(c · C_Sᵀ / η + g)`` with the subset's column potentials ``g``), which is also
      what :meth:`predict` does for new points. Memory stays ``O(spectral_samples²)`` and time
      linear in ``n``.
    - The logdet terms are computed in float64 whatever ``dtype`` is (``float64_logdet``).

    Parameters
    ----------
    n_clusters : int, default=8
    n_components : int, default=32
        Dimension ``d`` of the features ``z`` and ``c``.
    hidden : int, default=512
        Width of the backbone and of the heads.
    eps : float, default=0.1
        ``ε²``, the squared distortion of the coding rates.
    eta : float, default=0.15
        Entropy coefficient of the Sinkhorn membership (CPP uses 0.12-0.175). Smaller values make
        ``Γ`` favour small neighbourhoods (risking split clusters), larger ones spread it (risking
        merged clusters); a few well-separated manifolds (the synthetic curves of the tests) need
        about 0.3, while 0.15 did best on digits.
    gamma : float, default=0.05
        Weight of ``½‖Γ‖²_F`` (discourages a collapsed, permutation-like ``Γ``).
    augment : {"knn", None}, default="knn"
        Views of each sample for training (see above); ``None`` trains on the samples alone.
    n_neighbors : int or "auto", default="auto"
        With ``augment="knn"``: the nearest neighbours (Euclidean, in ``X``) a view is drawn from.
        ``"auto"``: a tenth of the average cluster, ``n_samples // (10 · n_clusters)``, between 5
        and 50. Too few neighbours make the views too local where neighbourhoods are noisy
        (Citeseer, above); too many cross between clusters where they meet (on subspaces through
        the origin, 50 neighbours of clusters of 100 points failed).
    n_views : int, default=2
        Views per sample and batch (each one a forward pass).
    invariance : float, default=1.0
        Weight of the view invariance term ``mean_a ⟨z_a, z̄⟩``.
    n_epochs : int, default=50
    warmup_epochs : int, default=10
    batch_size : int, default=512
    lr : float, default=1e-3
        Adam's learning rate (weight decay ``5e-4``).
    sinkhorn_iter : int, default=5
        Sinkhorn iterations per training batch.
    spectral_samples : int, default=4000
        The most points of the final ``Γ`` (see above).
    n_init : int, default=10
        k-means restarts of the spectral clustering.
    float64_logdet : bool, default=True
    random_state : None, int or numpy.random.RandomState
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    dtype : default="float32"
        A real floating dtype (complex ones are refused).
    verbose : int, default=1

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
    embedding_ : ndarray of shape (n_samples, n_components)
        The linearised representation ``Z`` (unit rows).
    cluster_features_ : ndarray of shape (n_samples, n_components)
        ``C``, the cluster head's output.
    membership_ : ndarray of shape (m, m)
        The doubly stochastic ``Γ`` on the training set (``m = n_samples``), or on the subset
        ``membership_index_`` when ``n_samples > spectral_samples``.
    membership_index_ : ndarray of shape (m,)
        The training rows of ``membership_``.
    history_ : list of dict
        One per epoch: ``epoch``, ``stage`` (``"warmup"`` or ``"mlc"``), ``loss``, ``delta_R``,
        ``R``, ``Rc``, ``invariance`` (with views), ``seconds``; with ``y`` given to :meth:`fit`,
        ``acc``/``nmi``/``ari``/``f1``
        of the k-means labels of ``C`` for monitoring only (never used to fit).
    network_ : MLCNetwork
        The trained network, in eval mode, on the device of the fit (on the CPU after unpickling).
    n_iter_ : int
    n_features_in_ : int

    Examples
    --------
    >>> from graphkit import ManifoldClustering, make_union_of_manifolds
    >>> from graphkit.metrics import clustering_accuracy
    >>> data = make_union_of_manifolds(n_samples=300, n_manifolds=3, n_features=50, kind="curves",
    ...                                noise=0.02, random_state=0)  # a circle, a spiral, a circle
    >>> model = ManifoldClustering(n_clusters=3, n_components=16, hidden=128, eta=0.3, n_epochs=40,
    ...                            warmup_epochs=10, batch_size=100, random_state=0, device="cpu", verbose=0)
    >>> labels = model.fit_predict(data.X)
    >>> clustering_accuracy(data.labels, labels) > 0.95
    True
    >>> model.membership_.shape, model.embedding_.shape
    ((300, 300), (300, 16))
    """

    _parameter_constraints: dict = {
        **TorchEstimator._parameter_constraints,
        "n_clusters": [integers(1)],
        "n_components": [integers(1)],
        "hidden": [integers(1)],
        "eps": [reals(0, closed="neither")],
        "eta": [reals(0, closed="neither")],
        "gamma": [reals(0)],
        "augment": [StrOptions({"knn"}), None],
        "n_neighbors": [integers(1), StrOptions({"auto"})],
        "n_views": [integers(1)],
        "invariance": [reals(0)],
        "n_epochs": [integers(0)],
        "warmup_epochs": [integers(0)],
        "batch_size": [integers(1)],
        "lr": [reals(0, closed="neither")],
        "sinkhorn_iter": [integers(1)],
        "spectral_samples": [integers(2)],
        "n_init": [integers(1)],
        "float64_logdet": ["boolean"],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        n_components: int = 32,
        hidden: int = 512,
        eps: float = 0.1,
        eta: float = 0.15,
        gamma: float = 0.05,
        augment: Optional[str] = "knn",
        n_neighbors: Any = "auto",
        n_views: int = 2,
        invariance: float = 1.0,
        n_epochs: int = 50,
        warmup_epochs: int = 10,
        batch_size: int = 512,
        lr: float = 1e-3,
        sinkhorn_iter: int = 5,
        spectral_samples: int = 4000,
        n_init: int = 10,
        float64_logdet: bool = True,
        random_state: Any = None,
        device: Any = "auto",
        dtype: Any = "float32",
        verbose: int = 1,
    ):
        self.n_clusters = n_clusters
        self.n_components = n_components
        self.hidden = hidden
        self.eps = eps
        self.eta = eta
        self.gamma = gamma
        self.augment = augment
        self.n_neighbors = n_neighbors
        self.n_views = n_views
        self.invariance = invariance
        self.n_epochs = n_epochs
        self.warmup_epochs = warmup_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.sinkhorn_iter = sinkhorn_iter
        self.spectral_samples = spectral_samples
        self.n_init = n_init
        self.float64_logdet = float64_logdet
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    # -- validation -----------------------------------------------------------------------------

    def _check_param_combinations(self) -> None:
        """``dtype`` is a real floating dtype."""
        real_dtype(self.dtype)

    def _check_X(self, X: Any, reset: bool) -> np.ndarray:
        reject_complex(X, "X")
        if isinstance(X, torch.Tensor):
            X = backend.to_numpy(X)
        X = validate_data(self, X, accept_sparse=False, dtype=[np.float64, np.float32], reset=reset,
                          ensure_min_samples=2 if reset else 1)
        _check_scale(X, backend.resolve_dtype(self.dtype))
        return X

    def _divergence_hint(self, dtype: torch.dtype) -> str:
        """The likely cause of non-finite values in training, and what to change."""
        return (f"the network overflowed {str(dtype).replace('torch.', '')}: scale X (e.g. with "
                f"sklearn.preprocessing.StandardScaler), lower lr{_or_float64(dtype)}")

    def _check_finite_network(self, network: MLCNetwork, dtype: torch.dtype) -> None:
        """Raise NonFiniteResultError unless every weight and BatchNorm statistic of ``network`` is finite."""
        for name, tensor in network.state_dict().items():
            check_finite_result(tensor, f"MLC network's {name}", hint=self._divergence_hint(dtype))

    # -- fitting --------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> "ManifoldClustering":
        """Warm up with TCR, train with ΔR and the Sinkhorn membership, cluster ``Γ`` spectrally.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features), or a PyTorch Geometric Data
            Features (raw, or from a pretrained backbone). Standardise them first if their
            columns have very different scales. Of a ``Data``, only the node features ``x`` are
            used (here and in :meth:`transform`, :meth:`predict` and the ``fit_*`` methods): MLC
            builds its own neighbourhoods from the features, not from ``edge_index``.
        y : array-like of shape (n_samples,), optional
            True labels, used only to record scores per epoch in ``history_``.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            For complex ``X`` (before any cast could drop the imaginary part).
        ValueError
            For a bad parameter (named), including a complex ``dtype``; for ``X`` holding NaN or
            infinity, or values so large that squared distances between rows overflow ``dtype``
            (scale ``X``); for a ``Data`` without node features ``x``.
        tensorkit.validation.NonFiniteResultError
            A ``ValueError``: when the loss, the network's weights or statistics, the features or
            the membership become NaN or infinite (the message suggests scaling ``X``, lowering
            ``lr``, or float64).
        """
        X, _ = features_and_graph(X, None, "ManifoldClustering")
        device, dtype, source = self._fit_setup()
        X = self._check_X(X, reset=True)
        n = X.shape[0]
        if self.n_clusters > n:
            raise ValueError(f"n_clusters={self.n_clusters} must not exceed the number of samples (n_samples={n})")
        labels = None
        if y is not None:
            labels = np.asarray(backend.to_numpy(y) if isinstance(y, torch.Tensor) else y)
            if labels.ndim != 1 or len(labels) != n:
                raise ValueError(f"y must hold one label per sample ({n}); got shape {labels.shape}")
        network_seed, self._monitor_seed = source.spawn_seed(), source.spawn_seed()
        with backend.torch_seeded(network_seed):
            network = MLCNetwork(X.shape[1], int(self.hidden), int(self.n_components))
        network = network.to(device=device, dtype=dtype)
        x_all = torch.tensor(X, device=device, dtype=dtype)

        self.history_ = []
        started = time.perf_counter()
        views = self._view_pool(X, device)
        if self.warmup_epochs:
            self._train(network, x_all, views, "warmup", self.warmup_epochs, labels, source, started)
        network.copy_feature_head()
        if self.n_epochs:
            self._train(network, x_all, views, "mlc", self.n_epochs, labels, source, started)
        self.n_iter_ = len(self.history_)
        self._check_finite_network(network, dtype)

        network.eval()
        with torch.no_grad():
            z, c = self._embed(network, x_all)
            if n <= self.spectral_samples:
                index = np.arange(n)
            else:
                index = np.sort(source.numpy.choice(n, self.spectral_samples, replace=False))
            c_sub = c[torch.as_tensor(index, device=device)].double()
            log_gamma, g = symmetric_log_sinkhorn((c_sub @ c_sub.T).div_(self.eta), n_iter=1000, tol=1e-6)
            gamma = log_gamma.exp_()
            del log_gamma
            for result, what in ((z, "MLC's features"), (c, "MLC's cluster features"), (gamma, "MLC's membership")):
                check_finite_result(result, what, hint=self._divergence_hint(dtype))
            sub_labels = spectral_labels(gamma, self.n_clusters, self.n_init, source.numpy)
        self.membership_ = gamma.cpu().numpy()
        self.membership_index_ = index
        self._anchor_features = c_sub.cpu().numpy()
        self._anchor_potentials = g.cpu().numpy()
        self._anchor_labels = sub_labels
        self.embedding_ = backend.to_numpy(z)
        self.cluster_features_ = backend.to_numpy(c)
        if len(index) == n:
            self.labels_ = sub_labels
        else:
            self.labels_ = self._assign(c)
            self.labels_[index] = sub_labels
        self.network_ = network
        self._n_features_out = int(self.n_components)
        return self

    def fit_predict(self, X: Any, y: Any = None) -> Any:
        """Fit and return ``labels_`` (a torch tensor when ``X``, or a ``Data``'s ``x``, is one)."""
        X, _ = features_and_graph(X, None, "ManifoldClustering")
        return backend.to_output(self.fit(X, y).labels_, like=X)

    def transform(self, X: Any) -> Any:
        """The linearised features ``z`` of new samples, shape (n_samples, n_components)."""
        check_is_fitted(self, "network_")
        features_in, _ = features_and_graph(X, None, "ManifoldClustering")
        z, _ = self._forward_new(features_in)
        return backend.to_output(z.cpu().numpy().astype(np.float64), like=features_in)

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """Fit and return ``embedding_``."""
        X, _ = features_and_graph(X, None, "ManifoldClustering")
        return backend.to_output(self.fit(X, y).embedding_, like=X)

    def predict(self, X: Any) -> Any:
        """Cluster of new samples: the cluster holding most of their Sinkhorn membership row.

        The row of a new point ``x`` against the clustered training points ``S`` is
        ``exp(c(x) · C_Sᵀ / η + g)`` with the column potentials ``g`` of the training ``Γ``;
        the label is the cluster of ``S`` with the largest total weight. On the training
        points this agrees with ``labels_`` up to the spectral step's corrections.

        Returns
        -------
        ndarray (or torch.Tensor when ``X`` is one) of shape (n_samples,)
        """
        check_is_fitted(self, "network_")
        features_in, _ = features_and_graph(X, None, "ManifoldClustering")
        _, c = self._forward_new(features_in)
        return backend.to_output(self._assign(c), like=features_in)

    # -- steps ----------------------------------------------------------------------------------

    def _forward_new(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``z`` and ``c`` of new samples, checked finite."""
        X = self._check_X(X, reset=False)
        device = backend.resolve_device(self.device)
        dtype = backend.resolve_dtype(self.dtype)
        network = _module_on(self.network_, device)
        network.eval()
        with torch.no_grad():
            z, c = self._embed(network, torch.tensor(X, device=device, dtype=dtype))
        for result, what in ((z, "MLC's features"), (c, "MLC's cluster features")):
            check_finite_result(result, what, hint=self._divergence_hint(dtype))
        return z, c

    @staticmethod
    def _embed(network: MLCNetwork, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Outputs are allocated once and filled chunk by chunk: keeping small per-chunk results
        # between the large, freed activations fragments the heap, and the resident memory then
        # grows with n (measured: +440 MiB at n = 100k with per-chunk pieces and a concatenation).
        n = x.shape[0]
        width = network.feature_head[-1].out_features
        z = x.new_empty((n, width))
        c = x.new_empty((n, width))
        for start in range(0, n, _INFERENCE_ROWS):
            z_chunk, c_chunk = network(x[start:start + _INFERENCE_ROWS])
            z[start:start + z_chunk.shape[0]] = z_chunk
            c[start:start + c_chunk.shape[0]] = c_chunk
            del z_chunk, c_chunk
        return z, c

    def _assign(self, c: torch.Tensor) -> np.ndarray:
        anchors = torch.as_tensor(self._anchor_features, device=c.device)
        potentials = torch.as_tensor(self._anchor_potentials, device=c.device)
        onehot = torch.nn.functional.one_hot(torch.as_tensor(self._anchor_labels, device=c.device),
                                             self.n_clusters).double()
        labels = torch.empty(c.shape[0], dtype=torch.int64, device=c.device)
        rows = max(1, _ASSIGN_ENTRIES // anchors.shape[0])  # memory stays flat in the number of points
        buffer = torch.empty((rows, anchors.shape[0]), dtype=torch.float64, device=c.device)
        scaled_anchors = anchors.T / self.eta
        for start in range(0, c.shape[0], rows):
            chunk = c[start:start + rows].double()
            logits = buffer[:chunk.shape[0]]
            torch.mm(chunk, scaled_anchors, out=logits)
            logits.add_(potentials)
            # softmax in place, in the one reused buffer (the normaliser does not change the argmax)
            logits.sub_(logits.amax(1, keepdim=True)).exp_()
            labels[start:start + chunk.shape[0]] = (logits @ onehot).argmax(1)
        return labels.cpu().numpy()

    def _view_pool(self, X: np.ndarray, device: torch.device) -> Optional[torch.Tensor]:
        """Row ``i``: sample ``i`` and its nearest neighbours, the rows its views are drawn from."""
        if self.augment is None or self.n_epochs + self.warmup_epochs == 0:
            return None
        n = X.shape[0]
        neighbours = nearest_neighbors(X, min(self._n_neighbors(n), n - 1))
        pool = np.concatenate([np.arange(n)[:, None], neighbours], axis=1)
        return torch.as_tensor(pool, device=device)

    def _n_neighbors(self, n: int) -> int:
        if isinstance(self.n_neighbors, str):  # "auto": a tenth of the average cluster
            return int(min(50, max(5, n // (10 * int(self.n_clusters)))))
        return int(self.n_neighbors)

    def _forward_views(self, network: MLCNetwork, x_all: torch.Tensor, pool: Optional[torch.Tensor],
                       batch: torch.Tensor, source, with_cluster: bool):
        """``z̄`` (and ``c̄``) of a batch and the view invariance ``mean_a ⟨z_a, z̄⟩`` (None without views)."""
        if pool is None:
            if with_cluster:
                return (*network(x_all[batch]), None)
            return network.features(x_all[batch]), None, None
        n_views = int(self.n_views)
        pick = torch.randint(pool.shape[1], (n_views, len(batch)), generator=source.torch).to(pool.device)
        rows = pool[batch.unsqueeze(0).expand(n_views, -1), pick].reshape(-1)
        if with_cluster:
            z, c = network(x_all[rows])
            c_mean = F.normalize(c.view(n_views, len(batch), -1).mean(0), dim=1)
        else:
            z, c_mean = network.features(x_all[rows]), None
        z = z.view(n_views, len(batch), -1)
        z_mean = F.normalize(z.mean(0), dim=1)
        return z_mean, c_mean, (z * z_mean).sum(-1).mean()

    def _train(self, network: MLCNetwork, x_all: torch.Tensor, pool: Optional[torch.Tensor], stage: str,
               n_epochs: int, labels, source, started: float) -> None:
        n = x_all.shape[0]
        warmup = stage == "warmup"
        parameters = list(network.backbone.parameters()) + list(network.feature_head.parameters())
        if not warmup:
            parameters += list(network.cluster_head.parameters())
        optimizer = torch.optim.Adam(parameters, lr=self.lr, weight_decay=5e-4)
        n_batches = max(1, math.ceil(n / self.batch_size))
        bar = self._progress(range(n_epochs), desc="MLC warm-up (TCR)" if warmup else "MLC")
        for epoch in bar:
            network.train()
            order = torch.randperm(n, generator=source.torch).numpy()
            record = {"loss": 0.0, "delta_R": 0.0, "R": 0.0, "Rc": 0.0}
            if pool is not None:
                record["invariance"] = 0.0
            for batch in np.array_split(order, n_batches):
                if len(batch) < 2:  # BatchNorm needs two samples
                    continue
                index = torch.as_tensor(batch, device=x_all.device)
                z, c, agreement = self._forward_views(network, x_all, pool, index, source, with_cluster=not warmup)
                if warmup:
                    total = coding_rate(z, self.eps, self.float64_logdet)
                    loss, terms = -total, {"R": total}
                else:
                    gamma = membership(c, self.eta, self.sinkhorn_iter)
                    terms = rate_reduction(z, gamma, self.eps, self.float64_logdet)
                    loss = -terms["delta"] + self.gamma * 0.5 * gamma.pow(2).sum()
                    terms = {"delta_R": terms["delta"], "R": terms["R"], "Rc": terms["Rc"]}
                if agreement is not None:
                    loss = loss - self.invariance * agreement
                    terms["invariance"] = agreement
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                weight = len(batch) / n
                record["loss"] += float(loss.detach()) * weight
                for name, value in terms.items():
                    record[name] += float(value.detach()) * weight
            check_finite_result(np.float64(record["loss"]), f"MLC's {'warm-up' if warmup else 'training'} loss",
                                hint=self._divergence_hint(x_all.dtype))
            if warmup:
                record["delta_R"] = record["Rc"] = float("nan")
            entry = {"epoch": len(self.history_), "stage": stage, **record,
                     "seconds": time.perf_counter() - started}
            if labels is not None:
                network.eval()
                with torch.no_grad():
                    _, c = self._embed(network, x_all)
                guess = KMeans(self.n_clusters, n_init=3, random_state=self._monitor_seed).fit_predict(
                    c.cpu().double().numpy())
                entry.update(clustering_scores(labels, guess))
            self.history_.append(entry)
            bar.set_postfix(loss=f"{record['loss']:.4g}")


MLC = ManifoldClustering
"""Alias of :class:`ManifoldClustering`."""
