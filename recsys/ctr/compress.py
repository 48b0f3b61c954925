"""Low-rank compression of CTR models by Atomic Feature Mimicking (AFM) or weight SVD.

Paper: Hao Yu, Minghao Fu, Jiandong Ding, Yusheng Zhou, Jianxin Wu, "Unified Low-rank Compression
Framework for Click-through Rate Prediction", KDD 2024 (arXiv:2405.18146). The authors released
evaluation code and a sketch of the compression math (``yuhao318/Atomic_Feature_Mimicking``); this
module is written from the paper.

AFM compresses what a layer *outputs* on real data rather than its weights:

- **Linear layer** ``y = W x + b`` (MLP layers; DCN-V2's cross matrices with ``targets`` "cross"):
  with the mean ``μ`` and the covariance of ``y`` over calibration data (population covariance,
  ``E[y yᵀ] - μ μᵀ``) and ``U_r`` its top-``r`` eigenvectors, the layer becomes two,
  ``W₁ = U_rᵀ W, b₁ = U_rᵀ b`` (``r`` outputs) and ``W₂ = U_r, b₂ = (I - U_r U_rᵀ) μ``, so that
  ``y ↦ U_r U_rᵀ (y - μ) + μ``: the PCA reconstruction of the output, exact at ``r = out_features``.
- **Embedding table** ``E`` (``n x d``, one per categorical field): with ``μ`` and the covariance of the
  *looked-up* rows (each row weighted by how often the calibration data uses it), the table is stored
  as ``E' = (E - μ) U_r`` (``n x r``) and a row is restored as ``E' U_rᵀ + μ``. Where the embeddings
  feed the first MLP layer directly (:class:`~recsys.ctr.DNN`), ``U_r`` and ``μ`` are folded into that
  layer (``W_f ← W_f U_r``, ``b ← b + W_f μ`` for the field's column block ``W_f``), so only ``E'`` is
  stored and the first layer shrinks; where an FM or cross interaction sits in between (DeepFM,
  DCN, DCN-V2), the up-projection ``U_r`` and ``μ`` are kept (:class:`LowRankEmbedding`).
- ``method="svd"``: the classic baseline, truncated SVD of the weights themselves: ``W ≈ U_r S_r V_rᵀ``
  (factors ``S_r^{1/2} V_rᵀ`` and ``U_r S_r^{1/2}``, the bias on the second), ``E ≈ (U_r S_r) V_rᵀ``.
- ``activation="relu"``: the paper's variant with an activation between the two factors of each MLP
  layer (``W₂ relu(W₁ x + b₁) + b₂``); it no longer reproduces the layer and needs fine-tuning.
- Optional fine-tuning of the compressed model (Adam, binary cross-entropy) on labelled calibration data.

Choosing ranks from ``ratio`` (the paper sets ranks by hand; this rule is ours): every targeted layer
keeps the fewest components whose share of its spectrum (output-covariance eigenvalues for AFM,
squared singular values for SVD) reaches one common threshold ``τ``; ``τ`` is the largest value whose
model is at most ``1 / ratio`` of the original size. A layer whose factorisation would not be
smaller than the layer stays as it is.

Examples
--------
>>> import numpy as np, torch
>>> from recsys.ctr import DNN, CTRInputs, compress
>>> model = DNN(n_dense=2, cardinalities=(50, 40), embed_dim=8, hidden=(32, 16), random_state=0)
>>> rng = np.random.default_rng(0)
>>> X = CTRInputs(rng.random((500, 2), dtype=np.float32), np.stack([rng.integers(0, 50, 500), rng.integers(0, 40, 500)], 1))
>>> small = compress(model, X, ranks={"embeddings": 3, "mlp.linear0": 8})
>>> type(small).__name__, small.compression_["ranks"]
('DNN', {'embeddings.0': 3, 'embeddings.1': 3, 'mlp.linear0': 8})
>>> small.compression_["params_after"] < small.compression_["params_before"]
True

:func:`recsys.ctr.evaluate_compression` reports the sizes, and the AUC, log loss and latency on
held-out data, of the compressed model next to the original.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from recsys.ctr.classifier import CTRClassifier, check_click_labels, predict_logits, train_ctr_model
from recsys.ctr.evaluation import _model_parts, count_bytes, count_parameters
from recsys.ctr.models import CTRModel
from recsys.ctr.schema import as_inputs
from tensorkit.base import StrOptions, integers, reals, validate_params
from tensorkit.validation import check_finite_result

__all__ = ["LowRankEmbedding", "LowRankLinear", "compress", "output_statistics"]

METHODS = ("afm", "svd")
TARGETS = ("embeddings", "mlp", "cross")
ACTIVATIONS = {None: None, "relu": nn.ReLU}


# ------------------------------------------------------------------------------------------------
# Replacement layers


class LowRankLinear(nn.Module):
    """A linear layer as two thin ones, ``second(act(first(x)))`` (no activation by default).

    Parameters
    ----------
    first : nn.Linear
        ``in_features -> rank``.
    second : nn.Linear
        ``rank -> out_features``.
    activation : None or "relu"
    """

    def __init__(self, first: nn.Linear, second: nn.Linear, activation: Optional[str] = None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be None or 'relu'; got {activation!r}")
        self.first = first
        self.act = ACTIVATIONS[activation]() if activation else None
        self.second = second

    @property
    def in_features(self) -> int:
        return self.first.in_features

    @property
    def out_features(self) -> int:
        return self.second.out_features

    @property
    def rank(self) -> int:
        return self.first.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.first(x)
        return self.second(self.act(h) if self.act is not None else h)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, rank={self.rank}, out_features={self.out_features}"


class LowRankEmbedding(nn.Module):
    """An embedding table stored as ``E'`` (``n x r``) and restored as ``E'[i] U_rᵀ + μ`` (width ``d``).

    Parameters
    ----------
    weight : torch.Tensor of shape (num_embeddings, rank)
    up : torch.Tensor of shape (embedding_dim, rank)
    mean : torch.Tensor of shape (embedding_dim,)
    """

    def __init__(self, weight: torch.Tensor, up: torch.Tensor, mean: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.up = nn.Parameter(up.detach().clone())
        self.mean = nn.Parameter(mean.detach().clone())

    @property
    def num_embeddings(self) -> int:
        return self.weight.shape[0]

    @property
    def embedding_dim(self) -> int:
        return self.up.shape[0]

    @property
    def rank(self) -> int:
        return self.weight.shape[1]

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return F.embedding(index, self.weight) @ self.up.T + self.mean

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, rank={self.rank}, embedding_dim={self.embedding_dim}"


# ------------------------------------------------------------------------------------------------
# Calibration statistics


@dataclass
class _Moments:
    """Running mean and covariance with a shift (the first batch's mean) against cancellation."""

    shift: Optional[torch.Tensor] = None
    s1: Optional[torch.Tensor] = None
    s2: Optional[torch.Tensor] = None
    count: int = 0

    def add(self, y: torch.Tensor) -> None:
        y = y.detach().reshape(-1, y.shape[-1]).to(torch.float64)
        if self.shift is None:
            self.shift = y.mean(dim=0)
            self.s1 = torch.zeros_like(self.shift)
            self.s2 = torch.zeros(y.shape[1], y.shape[1], dtype=torch.float64, device=y.device)
        centred = y - self.shift
        self.s1 += centred.sum(dim=0)
        self.s2 += centred.T @ centred
        self.count += y.shape[0]

    def result(self) -> tuple:
        m = self.s1 / self.count
        return self.shift + m, self.s2 / self.count - torch.outer(m, m)


def output_statistics(model: CTRModel, inputs: Any, layers: Sequence[str], batch_size: int = 4096) -> dict:
    """Mean and covariance of the outputs of the named modules over ``inputs``.

    ``"embeddings.f"`` gives the statistics of field ``f``'s looked-up rows (frequency weighted); any
    other name is a module whose output is hooked (e.g. ``"mlp.linear1"``). Accumulated in float64.

    Returns
    -------
    dict of str to (mean, covariance)
    """
    inputs = as_inputs(inputs)
    modules = dict(model.named_modules())
    moments = {}
    hooks = []
    embed_fields = {}
    for name in layers:
        if name.startswith("embeddings."):
            embed_fields[name] = int(name.split(".")[1])
            continue
        if name not in modules:
            raise ValueError(f"the model has no layer {name!r}")
        moments[name] = _Moments()
        hooks.append(modules[name].register_forward_hook(
            lambda _m, _i, out, key=name: moments[key].add(out)))
    device = next(model.parameters()).device
    try:
        if hooks:
            predict_logits(model, inputs, batch_size)
    finally:
        for hook in hooks:
            hook.remove()
    stats = {name: m.result() for name, m in moments.items()}
    for name, f in embed_fields.items():
        table = model.embeddings[f]
        weight = _table_rows(table).to(torch.float64)
        counts = torch.as_tensor(np.bincount(inputs.categorical[:, f], minlength=weight.shape[0]),
                                 device=device, dtype=torch.float64)
        if counts.shape[0] > weight.shape[0]:
            raise ValueError(f"categorical field {f} has index {int(inputs.categorical[:, f].max())}, beyond "
                             f"its table of {weight.shape[0]} rows")
        total = counts.sum()
        mean = counts @ weight / total
        centred = weight - mean
        stats[name] = (mean, (centred * counts[:, None]).T @ centred / total)
    return stats


def _table_rows(table: nn.Module) -> torch.Tensor:
    """The full-width rows of an embedding table (restored if it is already low rank)."""
    if isinstance(table, LowRankEmbedding):
        return table.weight.detach() @ table.up.detach().T + table.mean.detach()
    return table.weight.detach()


# ------------------------------------------------------------------------------------------------
# Targets and ranks


@dataclass
class _Target:
    name: str
    kind: str              # "linear" or "embedding"
    group: str             # "embeddings", "mlp", "cross"
    rows: int              # embedding: table rows; linear: out_features
    width: int             # embedding: d; linear: in_features
    bias: bool = True
    spectrum: Optional[np.ndarray] = None
    max_rank: int = 0


def _targets(model: CTRModel, targets: Sequence[str]) -> list:
    found = []
    if "embeddings" in targets:
        for f, table in enumerate(model.embeddings):
            if not isinstance(table, nn.Embedding):
                raise ValueError(f"embeddings.{f} is already compressed ({type(table).__name__})")
            found.append(_Target(f"embeddings.{f}", "embedding", "embeddings", table.num_embeddings,
                                 table.embedding_dim))
    if "mlp" in targets:
        for name in model.mlp.linear_names():
            layer = getattr(model.mlp, name)
            if isinstance(layer, nn.Linear):
                found.append(_Target(f"mlp.{name}", "linear", "mlp", layer.out_features, layer.in_features,
                                     layer.bias is not None))
    if "cross" in targets:
        cross = getattr(model, "cross", None)
        if cross is None or cross.parameterization != "matrix":
            raise ValueError("targets 'cross' needs a model with full-matrix cross layers (DCNv2)")
        for i, layer in enumerate(cross.layers):
            if isinstance(layer, nn.Linear):
                found.append(_Target(f"cross.layers.{i}", "linear", "cross", layer.out_features, layer.in_features,
                                     layer.bias is not None))
    return found


def _can_fold(model: CTRModel) -> bool:
    return bool(model.embeddings_feed_mlp_only and model.hidden)


def _first_mlp_layer(model: CTRModel) -> str:
    return "mlp." + model.mlp.linear_names()[0]


def _factored_size(target: _Target, rank: int, method: str, folded: bool, width: Optional[int] = None) -> int:
    width = target.width if width is None else width
    if target.kind == "embedding":
        return target.rows * rank + (0 if folded else width * rank + width)
    first_bias = rank if (method == "afm" and target.bias) else 0
    return width * rank + first_bias + rank * target.rows + target.rows


def _dense_size(target: _Target, width: Optional[int] = None) -> int:
    width = target.width if width is None else width
    if target.kind == "embedding":
        return target.rows * width
    return width * target.rows + (target.rows if target.bias else 0)


def _plan_size(model: CTRModel, targets: list, ranks: dict, method: str, fold: bool, base: int) -> int:
    """Parameters of the compressed model for ``ranks`` (name -> rank; absent: kept as is).

    ``base`` counts every parameter outside the targets. Folded embeddings narrow the first MLP
    layer's input by ``d - r`` columns per field.
    """
    folding = fold and _can_fold(model)
    first = _first_mlp_layer(model) if model.hidden else None
    size, width_delta = base, 0
    for t in targets:
        if t.kind == "embedding":
            r = ranks.get(t.name)
            size += _dense_size(t) if r is None else _factored_size(t, r, method, folding)
            if r is not None and folding:
                width_delta += r - t.width
    first_is_target = False
    for t in targets:
        if t.kind != "linear":
            continue
        width = t.width + (width_delta if t.name == first else 0)
        first_is_target |= t.name == first
        r = ranks.get(t.name)
        size += _dense_size(t, width) if r is None else _factored_size(t, r, method, False, width)
    if folding and first is not None and not first_is_target:
        size += width_delta * getattr(model.mlp, first.split(".", 1)[1]).out_features
    return size


def _spectra(model: CTRModel, targets: list, method: str, stats: Optional[dict]) -> None:
    modules = dict(model.named_modules())
    for t in targets:
        if method == "afm":
            values = torch.linalg.eigvalsh(stats[t.name][1]).flip(0).clamp_min(0)
        else:
            weight = _table_rows(modules[t.name]) if t.kind == "embedding" else modules[t.name].weight.detach()
            values = torch.linalg.svdvals(weight.to(torch.float64)).square()
        t.spectrum = values.cpu().numpy()
        t.max_rank = t.width if t.kind == "embedding" else t.rows
        if method == "svd":
            t.max_rank = min(t.rows, t.width)


def _ranks_from_ratio(model: CTRModel, targets: list, ratio: float, method: str, fold: bool,
                      before: int) -> dict:
    base = before - sum(_dense_size(t) for t in targets)
    budget = before / ratio
    fold_now = fold and _can_fold(model)

    def ranks_at(tau: float) -> dict:
        chosen = {}
        for t in targets:
            energy = np.cumsum(t.spectrum)
            total = energy[-1]
            r = int(np.searchsorted(energy / total, tau - 1e-12) + 1) if total > 0 else 1
            r = min(max(r, 1), t.max_rank)
            if _factored_size(t, r, method, fold_now and t.kind == "embedding") < _dense_size(t):
                chosen[t.name] = r
        return chosen

    candidates = sorted({0.0} | {float(c) for t in targets for c in
                                 (np.cumsum(t.spectrum) / max(t.spectrum.sum(), 1e-300))})
    best = None
    for tau in candidates:
        chosen = ranks_at(tau)
        if _plan_size(model, targets, chosen, method, fold, base) <= budget:
            best = chosen
        else:
            break
    if best is None:
        smallest = _plan_size(model, targets, ranks_at(0.0), method, fold, base)
        raise ValueError(f"ratio={ratio:g} cannot be reached by compressing {sorted({t.group for t in targets})}: "
                         f"rank 1 everywhere gives {before / smallest:.2f}x ({smallest:,} of {before:,} "
                         "parameters); add targets or ask for less")
    return best


def _ranks_given(targets: list, ranks: Any) -> dict:
    by_name = {t.name: t for t in targets}
    groups = {t.group for t in targets}
    if isinstance(ranks, numbers.Integral):   # an int >= 1, checked by compress
        wanted = {t.name: int(ranks) for t in targets}
    elif isinstance(ranks, dict):
        wanted = {}
        for key, value in ranks.items():
            if key in groups:
                for t in targets:
                    if t.group == key and t.name not in ranks:
                        wanted[t.name] = value
            elif key in by_name:
                wanted[key] = value
            else:
                raise ValueError(f"ranks names {key!r}, which is not a targeted layer or group; targeted: "
                                 f"{sorted(groups)} with layers {sorted(by_name)}")
    for name, r in wanted.items():
        t = by_name[name]
        if r is None:
            continue
        if not integers(1).is_satisfied_by(r):
            raise ValueError(f"rank of {name} must be a positive int; got {r!r}")
        if r > t.max_rank:
            raise ValueError(f"rank {r} of {name} is larger than its width ({t.max_rank}: "
                             + ("embedding dimension" if t.kind == "embedding" else
                                "output features" if t.max_rank == t.rows else "smaller side of the weight") + ")")
    return {k: int(v) for k, v in wanted.items() if v is not None}


# ------------------------------------------------------------------------------------------------
# Building the compressed model


def _linear(in_features: int, out_features: int, weight: torch.Tensor, bias: Optional[torch.Tensor],
            like: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(in_features, out_features, bias=bias is not None, device=like.device, dtype=like.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight.to(like.dtype))
        if bias is not None:
            layer.bias.copy_(bias.to(like.dtype))
    return layer


def _top_eigenvectors(covariance: torch.Tensor, rank: int) -> torch.Tensor:
    _, vectors = torch.linalg.eigh(covariance)
    return vectors.flip(1)[:, :rank]


def _compress_linear(layer: nn.Linear, rank: int, method: str, stats: Optional[tuple],
                     activation: Optional[str]) -> LowRankLinear:
    W = layer.weight.detach().to(torch.float64)
    b = layer.bias.detach().to(torch.float64) if layer.bias is not None else torch.zeros(W.shape[0], dtype=W.dtype,
                                                                                          device=W.device)
    if method == "afm":
        mean, cov = stats
        U = _top_eigenvectors(cov, rank)
        first = _linear(W.shape[1], rank, U.T @ W, U.T @ b, layer.weight)
        second = _linear(rank, W.shape[0], U, mean - U @ (U.T @ mean), layer.weight)
    else:
        left, sigma, right_t = torch.linalg.svd(W, full_matrices=False)
        root = sigma[:rank].sqrt()
        first = _linear(W.shape[1], rank, root[:, None] * right_t[:rank], None, layer.weight)
        second = _linear(rank, W.shape[0], left[:, :rank] * root, b if layer.bias is not None else None,
                         layer.weight)
    return LowRankLinear(first, second, activation)


def _embedding_factors(table: nn.Embedding, rank: int, method: str, stats: Optional[tuple]) -> tuple:
    """``(E', U_r, μ)`` with ``E ≈ E' U_rᵀ + μ``."""
    E = table.weight.detach().to(torch.float64)
    if method == "afm":
        mean, cov = stats
        U = _top_eigenvectors(cov, rank)
        return (E - mean) @ U, U, mean
    left, sigma, right_t = torch.linalg.svd(E, full_matrices=False)
    return left[:, :rank] * sigma[:rank], right_t[:rank].T, torch.zeros(E.shape[1], dtype=E.dtype, device=E.device)


def _fold_into_first_layer(model: CTRModel, factors: dict) -> None:
    """Fold each compressed field's ``U_r`` and ``μ`` into the first MLP layer's column block."""
    name = model.mlp.linear_names()[0]
    holder = getattr(model.mlp, name)
    layer = holder.first if isinstance(holder, LowRankLinear) else holder
    W = layer.weight.detach().to(torch.float64)
    b = layer.bias.detach().to(torch.float64) if layer.bias is not None else torch.zeros(W.shape[0], dtype=W.dtype,
                                                                                          device=W.device)
    blocks, offset = [], 0
    for f, table in enumerate(model.embeddings):
        width = table.embedding_dim
        block = W[:, offset:offset + width]
        if f in factors:
            _, U, mean = factors[f]
            b = b + block @ mean
            block = block @ U
        blocks.append(block)
        offset += width
    blocks.append(W[:, offset:])
    W_new = torch.cat(blocks, dim=1)
    needs_bias = layer.bias is not None or bool(torch.any(b != 0))
    new = _linear(W_new.shape[1], W.shape[0], W_new, b if needs_bias else None, layer.weight)
    if isinstance(holder, LowRankLinear):
        holder.first = new
    else:
        setattr(model.mlp, name, new)


def _build(model: CTRModel, targets: list, ranks: dict, method: str, fold: bool, stats: Optional[dict],
           activation: Optional[str]) -> CTRModel:
    small = copy.deepcopy(model)
    modules = dict(small.named_modules())
    for t in targets:
        if t.kind != "linear" or t.name not in ranks:
            continue
        parent_name, child = t.name.rsplit(".", 1)
        parent = modules[parent_name]
        replacement = _compress_linear(modules[t.name], ranks[t.name], method,
                                       stats.get(t.name) if stats else None, activation)
        if isinstance(parent, nn.ModuleList):
            parent[int(child)] = replacement
        else:
            setattr(parent, child, replacement)
    factors = {}
    for t in targets:
        if t.kind == "embedding" and t.name in ranks:
            f = int(t.name.split(".")[1])
            factors[f] = _embedding_factors(small.embeddings[f], ranks[t.name], method,
                                            stats.get(t.name) if stats else None)
    if factors and fold and _can_fold(small):
        _fold_into_first_layer(small, factors)
        for f, (reduced, _, _) in factors.items():
            table = nn.Embedding(reduced.shape[0], reduced.shape[1], device=reduced.device,
                                 dtype=small.embeddings[f].weight.dtype)
            with torch.no_grad():
                table.weight.copy_(reduced)
            small.embeddings[f] = table
    else:
        dtype = next(small.parameters()).dtype
        for f, (reduced, U, mean) in factors.items():
            small.embeddings[f] = LowRankEmbedding(reduced.to(dtype), U.to(dtype), mean.to(dtype))
    return small.eval()


# ------------------------------------------------------------------------------------------------
# The entry point


@validate_params({"method": [StrOptions(set(METHODS))], "ranks": [integers(1), dict, None], "ratio": [reals(1), None],
                  "activation": [StrOptions({"relu"}), None], "finetune_epochs": [integers(0)],
                  "finetune_learning_rate": [reals(0, closed="neither")]})
def compress(model: Any, X_calibration: Any = None, *, method: str = "afm", ranks: Any = None,
             ratio: Optional[float] = None, targets: Sequence[str] = ("embeddings", "mlp"), fold: bool = True,
             y_calibration: Any = None, activation: Optional[str] = None, finetune_epochs: int = 0,
             finetune_learning_rate: float = 1e-4, batch_size: Optional[int] = None, random_state: Any = None,
             verbose: int = 0) -> Any:
    """Compress a CTR model by Atomic Feature Mimicking (AFM) or weight SVD (Yu et al., KDD 2024).

    See the module docstring for the method; :func:`recsys.ctr.evaluate_compression` measures the
    result (sizes, AUC, log loss, latency) next to the original.

    Parameters
    ----------
    model : CTRClassifier (fitted) or CTRModel
    X_calibration : raw rows (for a classifier), CTRInputs or a (dense, categorical) pair (for a module)
        Data whose layer outputs AFM mimics: the training set, as in the paper, or a sample of it.
        Not needed for ``method="svd"`` without fine-tuning.
    method : {"afm", "svd"}, default="afm"
    ranks : int or dict, optional
        Rank per targeted layer: one int for all, or a dict keyed by layer name (``"embeddings.0"``,
        ``"mlp.linear1"``, ``"cross.layers.0"``) or group (``"embeddings"``, ``"mlp"``, ``"cross"``);
        layers left out stay as they are. Exactly one of ``ranks`` and ``ratio``.
    ratio : float, optional
        Total model-size reduction (``params_before / params_after``) to reach; ranks are chosen by a
        common spectral-energy threshold (module docstring).
    targets : sequence of {"embeddings", "mlp", "cross"}, default=("embeddings", "mlp")
        "cross": DCN-V2's cross matrices.
    fold : bool, default=True
        Fold embedding up-projections into the first MLP layer where nothing sits in between (DNN).
    y_calibration : array-like of 0/1, optional
        Labels of ``X_calibration``, needed for fine-tuning.
    activation : None or "relu", default=None
        Activation between the two factors of each compressed linear layer (needs fine-tuning).
    finetune_epochs : int, default=0
        Epochs of Adam on ``(X_calibration, y_calibration)`` after compression.
    finetune_learning_rate : float, default=1e-4
    batch_size : int, optional
        For calibration and fine-tuning (default: the classifier's, at least 1024, or 4096).
    random_state : None, int or RandomState
        Batch order of fine-tuning.
    verbose : int, default=0
        A progress bar over the fine-tuning epochs.

    Returns
    -------
    compressed : same kind as ``model``
        A fitted CTRClassifier with the smaller module, or the smaller module; the original is
        unchanged. Its attribute ``compression_`` (on the classifier and on its module) records
        ``method``, ``targets``, ``ranks`` (compressed layer -> rank), ``folded``, ``activation``,
        with fine-tuning ``finetune_history``, and the sizes ``params_before``, ``params_after``,
        ``bytes_before``, ``bytes_after`` and ``ratio`` (achieved).

    Raises
    ------
    ValueError
        Unknown method/target/layer, a rank larger than a layer's width, an unreachable ratio,
        bad labels, or both/neither of ``ranks`` and ``ratio``; a
        :class:`tensorkit.validation.NonFiniteResultError` when a weight of the compressed model is not
        finite (or fine-tuning diverges).
    TypeError
        Complex calibration inputs, or a model that is neither a fitted CTRClassifier nor a CTRModel.
    """
    targets = _check_arguments(ranks, ratio, targets, activation, finetune_epochs)
    module, encode, batch_size = _model_parts(model, batch_size)
    if (method == "afm" or finetune_epochs > 0) and X_calibration is None:
        raise ValueError("X_calibration is needed for method='afm' and for fine-tuning (the training set, "
                         "or a sample of it)")
    calibration = encode(X_calibration) if X_calibration is not None else None
    if calibration is not None and len(calibration) == 0:
        raise ValueError("X_calibration has no rows")
    labels = check_click_labels(y_calibration, len(calibration)) if finetune_epochs > 0 else None

    was_training = module.training
    module.eval()
    found = _targets(module, targets)
    if not found:
        raise ValueError(f"the model has no layer to compress among targets {tuple(targets)}")
    stats = output_statistics(module, calibration, [t.name for t in found], batch_size) if method == "afm" else None
    _spectra(module, found, method, stats)
    before = count_parameters(module)
    chosen = _ranks_given(found, ranks) if ranks is not None else \
        _ranks_from_ratio(module, found, float(ratio), method, fold, before)
    small = _build(module, found, chosen, method, fold, stats, activation)
    module.train(was_training)

    record: dict = {"method": method, "targets": tuple(targets),
                    "ranks": dict(sorted(chosen.items(), key=lambda kv: _order(kv[0]))),
                    "folded": bool(fold and _can_fold(module) and any(n.startswith("embeddings") for n in chosen)),
                    "activation": activation}
    if finetune_epochs > 0:
        record["finetune_history"], _ = train_ctr_model(
            small, calibration, labels, batch_size=batch_size, max_epochs=finetune_epochs,
            learning_rate=finetune_learning_rate, random_state=random_state, verbose=verbose, desc="fine-tuning")
    small.eval()
    for name, parameter in small.named_parameters():
        check_finite_result(parameter.detach(), f"the compressed model's {name}",
                            "the model or the calibration data hold values too large for the output "
                            "statistics (check X_calibration and the model's weights)")
    record.update(params_before=before, params_after=count_parameters(small), bytes_before=count_bytes(module),
                  bytes_after=count_bytes(small))
    record["ratio"] = record["params_before"] / record["params_after"]
    small.compression_ = record
    return small if isinstance(model, CTRModel) else _with_module(model, small)


def _check_arguments(ranks: Any, ratio: Any, targets: Any, activation: Any, finetune_epochs: int) -> tuple:
    """The checked ``targets`` (a tuple), or a ``ValueError`` naming the argument that is wrong; the
    arguments' own constraints are declared on :func:`compress`."""
    if isinstance(targets, str):
        targets = (targets,)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise ValueError(f"targets must be a non-empty subset of {TARGETS}; got {tuple(targets)!r}")
    if (ranks is None) == (ratio is None):
        raise ValueError("give exactly one of ranks (per layer) and ratio (total size reduction)")
    if activation is not None and finetune_epochs == 0:
        warnings.warn("activation between the factors changes the layer's function; without fine-tuning "
                      "(finetune_epochs > 0) the compressed model is not a PCA reconstruction", UserWarning,
                      stacklevel=4)
    return tuple(targets)


def _with_module(classifier: CTRClassifier, small: CTRModel) -> CTRClassifier:
    """A fitted copy of ``classifier`` (same parameters and fitted state) around the module ``small``."""
    from sklearn.base import clone

    compressed = clone(classifier)
    for key, value in classifier.__dict__.items():
        if key.endswith("_") and not key.startswith("__") and key != "model_":
            setattr(compressed, key, value)
    compressed.model_ = small
    compressed.compression_ = small.compression_
    return compressed


def _order(name: str) -> tuple:
    group, _, rest = name.partition(".")
    digits = "".join(ch for ch in rest if ch.isdigit())
    return (TARGETS.index(group) if group in TARGETS else 9, int(digits) if digits else 0, name)
