"""FLoRA's layers: the Tucker adapter, the wrappers of each supported layer type, and the per-adapter
copies of the modules trained in full (``modules_to_save``)."""

from __future__ import annotations

import copy
import math
from typing import Any, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from tensorkit.flora._config import SUPPORTED_TYPES, FLoRAConfig, supported_base, transformers_conv1d
from tensorkit.validation import check_finite_result

_EINSUM_LETTERS = "abcdefghijklmnopqrstuvwxyz"


class TuckerAdapter(nn.Module):
    """One adapter: ``ΔW = scaling · core ×_1 U_1 ⋯ ×_N U_N`` for a weight of ``shape``.

    Parameters
    ----------
    shape : sequence of int
    ranks : sequence of int
    scaling : float
    """

    def __init__(self, shape: Sequence[int], ranks: Sequence[int], scaling: float = 1.0,
                 device: Any = None, dtype: Any = None):
        super().__init__()
        self.shape, self.ranks, self.scaling = tuple(shape), tuple(ranks), float(scaling)
        core_axes, out_axes = _EINSUM_LETTERS[:len(self.shape)], _EINSUM_LETTERS[len(self.shape):2 * len(self.shape)]
        self._equation = f"{core_axes}," + ",".join(o + c for o, c in zip(out_axes, core_axes)) + f"->{out_axes}"
        self.core = nn.Parameter(torch.empty(self.ranks, device=device, dtype=dtype))
        self.factors = nn.ParameterList(
            [nn.Parameter(torch.empty(d, r, device=device, dtype=dtype)) for d, r in zip(self.shape, self.ranks)]
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero core (the adapted model starts at the pretrained one), Kaiming-normal factors."""
        nn.init.zeros_(self.core)
        for factor in self.factors:
            nn.init.kaiming_normal_(factor, a=math.sqrt(3))

    def delta_weight(self) -> torch.Tensor:
        """The update ``ΔW``, differentiable: one einsum, equal to tensorly's ``tucker_to_tensor``
        (tested) and about four times faster on a 256 x 256 x 3 x 3 kernel."""
        return self.scaling * torch.einsum(self._equation, self.core, *self.factors)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, ranks={self.ranks}, scaling={self.scaling}"


class _FLoRALayer(nn.Module):
    """Base of the wrapping layers: ``base_layer`` plus named Tucker adapters."""

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: FLoRAConfig,
                 module_name: Optional[str] = None):
        super().__init__()
        self.base_layer = base_layer
        self.flora_adapters = nn.ModuleDict()
        self.flora_dropout = nn.ModuleDict()
        self.active_adapter: Optional[str] = adapter_name
        self.merged_adapters: list = []
        # the weight as it was before merge(), so unmerge() restores it exactly; a buffer so that
        # it follows .to(), but not saved in state dicts
        self.register_buffer("_unmerged_weight", None, persistent=False)
        self.update_layer(adapter_name, config, module_name)

    @property
    def weight(self) -> torch.Tensor:
        """The weight the layer computes with: the base weight plus the active adapter's update.

        A parent module that reads its child's weight instead of calling it (``nn.MultiheadAttention``
        reads ``out_proj.weight``) gets the adapted weight this way, and trains the adapter through it
        (without adapter dropout, which acts on inputs).
        """
        if self.merged or self.active_adapter is None:
            return self.base_layer.weight
        return self.base_layer.weight + self.delta_weight().to(self.base_layer.weight.dtype)

    @property
    def bias(self) -> Optional[torch.Tensor]:
        return getattr(self.base_layer, "bias", None)

    @property
    def merged(self) -> bool:
        return bool(self.merged_adapters)

    def update_layer(self, adapter_name: str, config: FLoRAConfig, module_name: Optional[str] = None) -> None:
        """Add (or replace) the adapter ``adapter_name`` (``module_name``: this layer's name in its model,
        for ranks given per module)."""
        if self.merged:
            raise ValueError("unmerge() before adding an adapter to a merged layer")
        weight = self.base_layer.weight
        ranks = config.ranks_for(weight.shape, module_name)
        self.flora_adapters[adapter_name] = TuckerAdapter(weight.shape, ranks, config.scaling(ranks),
                                                          device=weight.device, dtype=weight.dtype)
        self.flora_dropout[adapter_name] = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def set_adapter(self, adapter_name: Optional[str]) -> None:
        """Make ``adapter_name`` the active adapter (None: none, the base layer alone)."""
        if adapter_name is not None and adapter_name not in self.flora_adapters:
            raise ValueError(f"unknown adapter {adapter_name!r}; this layer has {list(self.flora_adapters)}")
        if self.merged:
            raise ValueError("unmerge() before switching adapters on a merged layer")
        self.active_adapter = adapter_name

    def delta_weight(self, adapter_name: Optional[str] = None) -> torch.Tensor:
        return self.flora_adapters[adapter_name or self.active_adapter].delta_weight()

    def merge(self) -> None:
        """Add the active adapter's ``ΔW`` into the base weight (a no-op when already merged).

        Raises
        ------
        NonFiniteResultError
            A ValueError, leaving the layer unchanged, when the merged weight would hold NaN or
            infinity (where the base weight is finite).
        """
        if self.merged or self.active_adapter is None:
            return
        with torch.no_grad():
            weight = self.base_layer.weight
            merged = weight + self.delta_weight().to(weight.dtype)
            check_finite_result(
                merged[torch.isfinite(weight)], f"the weight merged with adapter {self.active_adapter!r}",
                hint="the adapter holds NaN or infinity (training diverged: lower the learning rate or the "
                     "scale; or it was loaded from such a file), or the sum overflows the weight's dtype")
            self._unmerged_weight = weight.detach().clone()
            weight.copy_(merged)
        self.merged_adapters.append(self.active_adapter)

    def unmerge(self) -> None:
        """Restore the base weight exactly as it was before :meth:`merge`."""
        if not self.merged:
            return
        with torch.no_grad():
            self.base_layer.weight.copy_(self._unmerged_weight)
        self._unmerged_weight = None
        self.merged_adapters.clear()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged or self.active_adapter is None:
            return self.base_layer(x)
        dropout = self.flora_dropout[self.active_adapter]
        delta = self.delta_weight().to(self.base_layer.weight.dtype)
        if isinstance(dropout, nn.Dropout) and self.training:
            return self.base_layer(x) + self._forward_with(dropout(x), delta, with_bias=False)
        return self._forward_with(x, self.base_layer.weight + delta, with_bias=True)

    def _forward_with(self, x: torch.Tensor, weight: torch.Tensor, with_bias: bool) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        adapters = {name: adapter.ranks for name, adapter in self.flora_adapters.items()}
        return (f"{type(self).__name__}(adapters={adapters}, active={self.active_adapter!r}, "
                f"merged={self.merged}, base_layer={self.base_layer!r})")


class FLoRALinear(_FLoRALayer):
    """A :class:`torch.nn.Linear` with Tucker adapters (order 2: ``out x in``)."""

    def _forward_with(self, x, weight, with_bias):
        return F.linear(x, weight, self.base_layer.bias if with_bias else None)


class _FLoRAConv(_FLoRALayer):
    """Convolutions: modes ``out, in / groups, kernel...``; stride, padding, dilation, groups
    and padding mode are the base layer's."""

    def _forward_with(self, x, weight, with_bias):
        return self.base_layer._conv_forward(x, weight, self.base_layer.bias if with_bias else None)


class FLoRAConv1d(_FLoRAConv):
    """A :class:`torch.nn.Conv1d` with Tucker adapters (order 3)."""


class FLoRAConv2d(_FLoRAConv):
    """A :class:`torch.nn.Conv2d` with Tucker adapters (order 4)."""


class FLoRAConv3d(_FLoRAConv):
    """A :class:`torch.nn.Conv3d` with Tucker adapters (order 5)."""


class FLoRAEmbedding(_FLoRALayer):
    """A :class:`torch.nn.Embedding` with Tucker adapters on its ``num_embeddings x dim`` table.

    Dropout does not apply (the input is indices).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged or self.active_adapter is None:
            return self.base_layer(x)
        return self._forward_with(x, self.base_layer.weight + self.delta_weight().to(self.base_layer.weight.dtype), True)

    def _forward_with(self, x, weight, with_bias):
        base = self.base_layer
        return F.embedding(x, weight, base.padding_idx, base.max_norm, base.norm_type,
                           base.scale_grad_by_freq, base.sparse)


class FLoRATransformersConv1D(_FLoRALayer):
    """transformers' ``Conv1D`` (GPT-2's linear layer, weight stored ``in x out``) with Tucker adapters
    on that ``in x out`` weight."""

    def _forward_with(self, x, weight, with_bias):
        return F.linear(x, weight.t(), self.base_layer.bias if with_bias else None)


_WRAPPERS = {
    nn.Linear: FLoRALinear,
    nn.Conv1d: FLoRAConv1d,
    nn.Conv2d: FLoRAConv2d,
    nn.Conv3d: FLoRAConv3d,
    nn.Embedding: FLoRAEmbedding,
}
assert tuple(_WRAPPERS) == SUPPORTED_TYPES


def wrapper_for(module: nn.Module) -> Optional[type]:
    """The FLoRA layer class that wraps ``module`` (a supported type or a subclass), None when there is none."""
    base = supported_base(type(module))
    if base is None:
        return None
    return FLoRATransformersConv1D if base is transformers_conv1d() else _WRAPPERS[base]


class ModulesToSaveWrapper(nn.Module):
    """A module trained in full (``modules_to_save``): the original, frozen, and one trainable copy per adapter.

    The active adapter's copy runs; with no adapter active (or one that has no copy) the original runs,
    so switching adapters off gives the pretrained outputs back.

    Parameters
    ----------
    original_module : torch.nn.Module
    adapter_name : str
        The adapter to make a copy for, which becomes the active one.
    """

    def __init__(self, original_module: nn.Module, adapter_name: str):
        super().__init__()
        self.original_module = original_module
        self.modules_to_save = nn.ModuleDict()
        self.active_adapter: Optional[str] = None
        self.update(adapter_name)

    def update(self, adapter_name: str) -> None:
        """Add a copy of the original for ``adapter_name`` (kept if it exists) and make it active."""
        if adapter_name not in self.modules_to_save:
            self.modules_to_save[adapter_name] = copy.deepcopy(self.original_module)
        self.set_adapter(adapter_name)

    def set_adapter(self, adapter_name: Optional[str]) -> None:
        self.active_adapter = adapter_name
        self.original_module.requires_grad_(False)
        for name, module in self.modules_to_save.items():
            module.requires_grad_(name == adapter_name)

    def delete(self, adapter_name: str) -> None:
        if adapter_name in self.modules_to_save:
            del self.modules_to_save[adapter_name]
        if self.active_adapter == adapter_name:
            self.set_adapter(None)

    @property
    def active_module(self) -> nn.Module:
        """The module that runs: the active adapter's copy, or the original."""
        return self.modules_to_save[self.active_adapter] if self.active_adapter in self.modules_to_save \
            else self.original_module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.active_module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in ("original_module", "modules_to_save"):
                raise
            return getattr(self.active_module, name)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(adapters={list(self.modules_to_save)}, active={self.active_adapter!r}, "
                f"original_module={self.original_module!r})")
