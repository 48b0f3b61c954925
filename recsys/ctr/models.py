"""CTR models as torch modules over a field schema: :class:`DNN`, :class:`DeepFM`, :class:`DCN`, :class:`DCNv2`.

Every model reads ``(dense, categorical)``: a float tensor ``(n, n_dense)`` and an index tensor
``(n, n_categorical)`` (as :class:`recsys.ctr.CTRPreprocessor` makes them), looks each categorical
field up in its own embedding table ``embeddings[f]`` (``cardinalities[f] x embed_dim``), and returns
one logit per row. The shared input of the deep parts is ``x0 = [e_1, ..., e_F, dense]``.

- :class:`DNN`: ``x0`` through the MLP (``Linear``-``ReLU`` blocks ``mlp.linear0, mlp.linear1, ...``)
  and a linear head.
- :class:`DeepFM` (Guo et al., IJCAI 2017): first-order terms (a scalar per category and a linear
  map of the dense fields) + the factorization-machine pairwise term over the field embeddings +
  the DNN.
- :class:`DCN` (Wang et al., ADKDD 2017): a cross network ``x_{l+1} = x0 · (x_lᵀ w_l) + b_l + x_l``
  beside the MLP; the head reads both outputs.
- :class:`DCNv2` (Wang et al., WWW 2021, "DCN V2"): the same with full-matrix cross layers
  ``x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l``; ``W_l`` is the ``nn.Linear`` ``cross.layers[l]``.

The modules are plain compositions, so :func:`recsys.ctr.compress` can swap an ``nn.Linear`` or an
``nn.Embedding`` for its low-rank replacement and the model keeps working: the width of each field's
embedding output is read from the module in place, and when an embedding's projection has been folded
into the first MLP layer (DNN only), that layer's ``in_features`` shrink with it.

Examples
--------
>>> import torch
>>> from recsys.ctr import DeepFM
>>> model = DeepFM(n_dense=2, cardinalities=(5, 7), embed_dim=4, hidden=(8,), random_state=0)
>>> model(torch.rand(3, 2), torch.tensor([[0, 1], [4, 6], [2, 3]])).shape
torch.Size([3])
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Sequence

import torch
import torch.nn as nn

from recsys._checks import check_each
from tensorkit import backend
from tensorkit.base import check_parameters, integers, reals

__all__ = ["CTRModel", "CrossNetwork", "DCN", "DCNv2", "DNN", "DeepFM", "MLP", "MODELS", "build_model"]


class MLP(nn.Sequential):
    """``Linear``-``ReLU`` (-``Dropout``) blocks named ``linear0, act0, linear1, act1, ...``."""

    def __init__(self, in_features: int, hidden: Sequence[int], dropout: float = 0.0):
        layers: list = []
        width = in_features
        for i, units in enumerate(hidden):
            layers.append((f"linear{i}", nn.Linear(width, units)))
            layers.append((f"act{i}", nn.ReLU()))
            if dropout > 0:
                layers.append((f"drop{i}", nn.Dropout(dropout)))
            width = units
        super().__init__(OrderedDict(layers))
        self.out_features = width

    def linear_names(self) -> list:
        return [name for name, _ in self.named_children() if name.startswith("linear")]


class CrossNetwork(nn.Module):
    """Cross layers of DCN (``"vector"``) or DCN-V2 (``"matrix"``) on inputs of width ``width``."""

    def __init__(self, width: int, n_layers: int, parameterization: str = "matrix"):
        super().__init__()
        if parameterization not in ("vector", "matrix"):
            raise ValueError(f"parameterization must be 'vector' or 'matrix'; got {parameterization!r}")
        self.parameterization = parameterization
        self.width = width
        if parameterization == "matrix":
            self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(n_layers)])
        else:
            self.kernels = nn.Parameter(torch.empty(n_layers, width))
            self.biases = nn.Parameter(torch.zeros(n_layers, width))
        self.n_layers = n_layers

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for i in range(self.n_layers):
            if self.parameterization == "matrix":
                x = x0 * self.layers[i](x) + x
            else:
                x = x0 * (x @ self.kernels[i]).unsqueeze(1) + self.biases[i] + x
        return x


class CTRModel(nn.Module):
    """Base of the CTR models: per-field embedding tables, the MLP, the head.

    Parameters
    ----------
    n_dense : int
        Number of dense fields.
    cardinalities : sequence of int
        Embedding table size of each categorical field (bucket 0 included).
    embed_dim : int, default=16
    hidden : sequence of int, default=(400, 400, 400)
        Widths of the MLP's hidden layers (empty: no MLP).
    dropout : float, default=0.0
    init_std : float, default=0.01
        Standard deviation of the normal initialisation of the embeddings.
    random_state : None, int or RandomState
        Seeds the initialisation (drawn on the CPU, so it is the same on every device).

    Raises
    ------
    ValueError
        Sizes that are not positive ints, ``dropout`` outside ``[0, 1)``, ``init_std`` negative or not
        finite, or no field at all.
    """

    kind = "base"
    #: whether the field embeddings reach the first MLP layer with nothing in between
    embeddings_feed_mlp_only = False

    def __init__(self, n_dense: int, cardinalities: Sequence[int], embed_dim: int = 16,
                 hidden: Sequence[int] = (400, 400, 400), dropout: float = 0.0, init_std: float = 0.01,
                 random_state: Any = None):
        super().__init__()
        caller = type(self).__name__
        check_parameters({"n_dense": [integers(0)], "embed_dim": [integers(1)], "dropout": [reals(0, 1, closed="left")],
                          "init_std": [reals(0)]},
                         {"n_dense": n_dense, "embed_dim": embed_dim, "dropout": dropout, "init_std": init_std}, caller)
        check_each(integers(1), cardinalities, "cardinalities", caller)
        check_each(integers(1), hidden, "hidden", caller)
        if n_dense + len(cardinalities) == 0:
            raise ValueError("a CTR model needs at least one dense or categorical field")
        self.n_dense = int(n_dense)
        self.cardinalities = tuple(int(c) for c in cardinalities)
        self.embed_dim = int(embed_dim)
        self.hidden = tuple(int(h) for h in hidden)
        self.init_std = float(init_std)
        self.embeddings = nn.ModuleList([nn.Embedding(c, self.embed_dim) for c in self.cardinalities])
        self.mlp = MLP(self.input_width, self.hidden, dropout)

    @property
    def n_fields(self) -> int:
        return len(self.cardinalities)

    @property
    def input_width(self) -> int:
        """Width of ``x0 = [e_1, ..., e_F, dense]`` for the uncompressed embeddings."""
        return self.n_fields * self.embed_dim + self.n_dense

    def embed(self, categorical: torch.Tensor) -> list:
        """One ``(n, width_f)`` tensor per categorical field."""
        if categorical.shape[1] != self.n_fields:
            raise ValueError(f"categorical input has {categorical.shape[1]} columns; the model has "
                             f"{self.n_fields} categorical fields")
        return [table(categorical[:, f]) for f, table in enumerate(self.embeddings)]

    def deep_input(self, dense: torch.Tensor, fields: list) -> torch.Tensor:
        if dense.shape[1] != self.n_dense:
            raise ValueError(f"dense input has {dense.shape[1]} columns; the model has {self.n_dense} dense fields")
        parts = fields + [dense.to(self.dtype)]
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def reset_parameters(self, random_state: Any = None) -> None:
        """Initialise every weight from ``random_state`` (CPU draws, copied to the model's device)."""
        generator = backend.check_random_state(random_state, device="cpu").torch
        for module in self.modules():
            for name, param in module.named_parameters(recurse=False):
                values = torch.zeros(param.shape, dtype=torch.float64)
                if values.numel() == 0:
                    continue
                if isinstance(module, nn.Embedding):
                    nn.init.normal_(values, 0.0, self.init_std, generator=generator)
                elif isinstance(module, nn.Linear) and name == "weight":
                    nn.init.kaiming_uniform_(values, a=math.sqrt(5), generator=generator)
                elif isinstance(module, nn.Linear) and name == "bias":
                    bound = 1 / math.sqrt(module.in_features) if module.in_features > 0 else 0
                    nn.init.uniform_(values, -bound, bound, generator=generator)
                elif isinstance(module, CrossNetwork) and name == "kernels":
                    for i in range(values.shape[0]):
                        nn.init.xavier_normal_(values[i].reshape(-1, 1), generator=generator)
                else:
                    values.zero_()
                with torch.no_grad():
                    param.copy_(values.to(param.dtype))

    def _finish(self, random_state: Any) -> None:
        self.reset_parameters(random_state)

    def extra_repr(self) -> str:
        return f"n_dense={self.n_dense}, cardinalities={self.cardinalities}, embed_dim={self.embed_dim}"


class DNN(CTRModel):
    """Embeddings and dense fields through an MLP (the "embedding + MLP" baseline)."""

    kind = "dnn"
    embeddings_feed_mlp_only = True

    def __init__(self, n_dense, cardinalities, embed_dim=16, hidden=(400, 400, 400), dropout=0.0,
                 init_std=0.01, random_state=None):
        super().__init__(n_dense, cardinalities, embed_dim, hidden, dropout, init_std)
        self.head = nn.Linear(self.mlp.out_features, 1)
        self._finish(random_state)

    def forward(self, dense: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        x0 = self.deep_input(dense, self.embed(categorical))
        return self.head(self.mlp(x0)).squeeze(1)


class DeepFM(CTRModel):
    """DeepFM (Guo, Tang, Ye, Li, He, "DeepFM: A Factorization-Machine based Neural Network for CTR
    Prediction", IJCAI 2017): first-order terms + FM pairwise interactions + DNN, summed."""

    kind = "deepfm"

    def __init__(self, n_dense, cardinalities, embed_dim=16, hidden=(400, 400, 400), dropout=0.0,
                 init_std=0.01, random_state=None):
        super().__init__(n_dense, cardinalities, embed_dim, hidden, dropout, init_std)
        self.first_order = nn.ModuleList([nn.Embedding(c, 1) for c in self.cardinalities])
        self.dense_linear = nn.Linear(self.n_dense, 1, bias=False) if self.n_dense else None
        self.bias = nn.Parameter(torch.zeros(1))
        self.head = nn.Linear(self.mlp.out_features, 1, bias=False) if self.hidden else None
        self._finish(random_state)

    def forward(self, dense: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        fields = self.embed(categorical)
        logit = self.bias.expand(categorical.shape[0])
        if self.dense_linear is not None:
            logit = logit + self.dense_linear(dense.to(self.dtype)).squeeze(1)
        for f, table in enumerate(self.first_order):
            logit = logit + table(categorical[:, f]).squeeze(1)
        if len(fields) > 1:
            stacked = torch.stack(fields, dim=1)                            # (n, F, d)
            square_of_sum = stacked.sum(dim=1).square()
            sum_of_squares = stacked.square().sum(dim=1)
            logit = logit + 0.5 * (square_of_sum - sum_of_squares).sum(dim=1)
        if self.head is not None:
            logit = logit + self.head(self.mlp(self.deep_input(dense, fields))).squeeze(1)
        return logit


class DCN(CTRModel):
    """Deep & Cross Network (Wang, Fu, Fu, Wang, "Deep & Cross Network for Ad Click Predictions",
    ADKDD 2017): a cross network with vector weights beside the MLP, a linear head on both."""

    kind = "dcn"
    parameterization = "vector"

    def __init__(self, n_dense, cardinalities, embed_dim=16, hidden=(400, 400, 400), cross_layers=3,
                 dropout=0.0, init_std=0.01, random_state=None):
        super().__init__(n_dense, cardinalities, embed_dim, hidden, dropout, init_std)
        check_parameters({"cross_layers": [integers(1)]}, {"cross_layers": cross_layers}, type(self).__name__)
        self.cross = CrossNetwork(self.input_width, int(cross_layers), self.parameterization)
        self.head = nn.Linear(self.input_width + (self.mlp.out_features if self.hidden else 0), 1)
        self._finish(random_state)

    def forward(self, dense: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        x0 = self.deep_input(dense, self.embed(categorical))
        parts = [self.cross(x0)] + ([self.mlp(x0)] if self.hidden else [])
        return self.head(torch.cat(parts, dim=1)).squeeze(1)


class DCNv2(DCN):
    """DCN-V2 (Wang, Shivanna, Cheng, Jain, Lin, Hong, Chi, "DCN V2: Improved Deep & Cross Network and
    Practical Lessons for Web-scale Learning to Rank Systems", WWW 2021), parallel structure with
    full-matrix cross layers."""

    kind = "dcnv2"
    parameterization = "matrix"


MODELS = {"dnn": DNN, "deepfm": DeepFM, "dcn": DCN, "dcnv2": DCNv2}


def build_model(kind: str, n_dense: int, cardinalities: Sequence[int], embed_dim: int = 16,
                hidden: Sequence[int] = (400, 400, 400), cross_layers: int = 3, dropout: float = 0.0,
                init_std: float = 0.01, random_state: Any = None) -> CTRModel:
    """The model named ``kind`` (one of :data:`MODELS`: "dnn", "deepfm", "dcn", "dcnv2")."""
    if not isinstance(kind, str) or kind.lower() not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}; got {kind!r}")
    cls = MODELS[kind.lower()]
    kwargs = dict(embed_dim=embed_dim, hidden=hidden, dropout=dropout, init_std=init_std, random_state=random_state)
    if issubclass(cls, DCN):
        kwargs["cross_layers"] = cross_layers
    return cls(n_dense, cardinalities, **kwargs)
