"""FLoRA's configuration: what to adapt, at which Tucker ranks, with which multiplier; and its JSON form."""

from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import torch.nn as nn

from tensorkit.base import check_parameters, integers, reals

RanksSpec = Union[int, Sequence[int], Callable[[tuple], Sequence[int]], Mapping[str, Union[int, Sequence[int]]]]

# The layer types FLoRA wraps, with their subclasses (e.g. the attention's ``out_proj``); and
# transformers' ``Conv1D`` (GPT-2's), a Linear that stores its weight transposed, when transformers is loaded.
SUPPORTED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)
CONFIG_FORMAT = "tensorgraph_learn.flora/1"


def transformers_conv1d() -> Optional[type]:
    """transformers' ``Conv1D`` class if transformers is already imported (a model holding one imported it)."""
    module = sys.modules.get("transformers.pytorch_utils")
    return getattr(module, "Conv1D", None)


def supported_base(cls: type) -> Optional[type]:
    """The supported type ``cls`` is (or derives from), None when FLoRA cannot wrap it."""
    conv1d = transformers_conv1d()
    if conv1d is not None and issubclass(cls, conv1d):
        return conv1d
    return next((base for base in cls.__mro__ if base in SUPPORTED_TYPES), None)


def supported_names() -> list:
    """The names of the supported types, for error messages."""
    return [t.__name__ for t in SUPPORTED_TYPES] + ["transformers' Conv1D"]


@dataclass
class FLoRAConfig:
    """What to adapt and how.

    Parameters
    ----------
    ranks : int, sequence of int, callable or dict, default=4
        One int for every mode (capped at each mode's size, so a depthwise kernel's input mode of
        size 1 gets rank 1), one rank per mode, a callable ``weight_shape -> ranks``, or a dict from
        module names (or name suffixes) to either of the first two forms, for ranks per layer (what
        :meth:`FLoRAModel.save_pretrained <tensorkit.FLoRAModel.save_pretrained>` writes for a callable).
        An explicit rank larger than its mode's size is an error.
    scale : float, default=1.0
        Multiplier of the Tucker update (the authors' default).
    alpha : float or None, default=None
        If given, the multiplier is ``alpha / max(ranks)`` instead of ``scale`` (LoRA's convention).
    dropout : float, default=0.0
        Dropout on the adapter branch's input (Linear and convolutions); with dropout the forward
        pass runs the base layer and the adapter separately.
    target_modules : None, sequence of str, or str
        None: every supported layer (Linear, Conv1d/2d/3d, Embedding); a sequence: module names
        or name suffixes (``"conv1"`` matches ``"block.conv1"``); a str: a regular expression the
        whole module name must match.
    target_types : tuple of types or None
        Only modules of these types (among the supported ones) are wrapped.
    modules_to_save : sequence of str
        Names or name suffixes of modules that stay trainable (e.g. a new classifier head); they get
        no adapter, and their parameters are saved by :func:`flora_state_dict`.

    Raises
    ------
    ValueError
        Naming the parameter, when ``ranks`` is not a positive int, a sequence of positive ints or
        a callable (a float, a bool, NaN, 0 or a negative rank), ``scale`` or ``alpha`` is not a
        finite real number, ``dropout`` is not in ``[0, 1)``, ``target_modules`` is an invalid
        regular expression or holds something other than names, ``target_types`` holds a type that
        is not supported, or ``modules_to_save`` is one str instead of a sequence of names.
    """

    ranks: RanksSpec = 4
    scale: float = 1.0
    alpha: Optional[float] = None
    dropout: float = 0.0
    target_modules: Union[None, str, Sequence[str]] = None
    target_types: Optional[tuple] = None
    modules_to_save: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        check_parameters(_CONFIG_CONSTRAINTS, {"scale": self.scale, "alpha": self.alpha, "dropout": self.dropout},
                         type(self).__name__)
        # What the constraint language cannot say: the items of ranks, target_modules, target_types
        # and modules_to_save.
        if isinstance(self.ranks, Mapping):
            _check_rank_mapping(self.ranks)
        elif not callable(self.ranks):
            _check_rank_values(self.ranks, "ranks")
        _check_target_modules(self.target_modules)
        if self.target_types is not None:
            unsupported = [t for t in _as_sequence(self.target_types, "target_types")
                           if not (isinstance(t, type) and supported_base(t) is not None)]
            if unsupported:
                raise ValueError(f"target_types must be among {supported_names()} (or their subclasses); "
                                 f"got {unsupported}")
        _check_names(self.modules_to_save, "modules_to_save")

    def ranks_for(self, shape: Sequence[int], module_name: Optional[str] = None) -> tuple:
        """The Tucker ranks for a weight of this shape (held by the module ``module_name``)."""
        shape = tuple(int(d) for d in shape)
        ranks = self.ranks
        if isinstance(ranks, Mapping):
            ranks = _ranks_of_module(ranks, module_name)
        if callable(ranks):
            return _checked_ranks(ranks(shape), shape, "ranks(...)")
        if _is_int(ranks):
            _check_rank_values(ranks, "ranks")
            return tuple(min(int(ranks), d) for d in shape)
        return _checked_ranks(ranks, shape, "ranks")

    def scaling(self, ranks: Sequence[int]) -> float:
        return float(self.alpha) / max(ranks) if self.alpha is not None else float(self.scale)

    def to_dict(self) -> dict:
        """The configuration as JSON-ready values (what ``adapter_config.json`` holds).

        Raises
        ------
        ValueError
            If ``ranks`` is a callable, which cannot be written to a file: give an int or a list.
        """
        if callable(self.ranks):
            raise ValueError("a FLoRAConfig whose ranks is a callable cannot be saved; give ranks as an int "
                             "or a list of ints (one per mode)")
        values = asdict(self)
        values["ranks"] = _plain_ranks(self.ranks)
        if not isinstance(self.target_modules, (str, type(None))):
            values["target_modules"] = list(self.target_modules)
        values["modules_to_save"] = list(self.modules_to_save)
        if self.target_types is not None:
            values["target_types"] = [_type_name(_type_from_name(_type_name(t))) for t in self.target_types]
        return {"format": CONFIG_FORMAT, **values}

    @classmethod
    def from_dict(cls, values: dict) -> "FLoRAConfig":
        """The configuration :meth:`to_dict` wrote.

        Raises
        ------
        ValueError
            If ``values`` is not a FLoRA configuration (another format, unknown keys, a type name
            that is not a supported layer type).
        """
        if not isinstance(values, dict) or values.get("format") != CONFIG_FORMAT:
            found = values.get("format") if isinstance(values, dict) else type(values).__name__
            raise ValueError(f"not a FLoRA adapter configuration (format {found!r}, expected {CONFIG_FORMAT!r})")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names - {"format"})
        if unknown:
            raise ValueError(f"unknown keys in the FLoRA configuration: {unknown}")
        kwargs = {key: value for key, value in values.items() if key in names}
        if kwargs.get("target_types") is not None:
            kwargs["target_types"] = tuple(_type_from_name(name) for name in kwargs["target_types"])
        for key in ("modules_to_save",) + (() if isinstance(kwargs.get("target_modules"), (str, type(None)))
                                           else ("target_modules",)):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


def _plain_ranks(ranks: Any) -> Any:
    """Ranks as JSON values: an int, a list of ints, or a dict of either."""
    if isinstance(ranks, Mapping):
        return {str(name): _plain_ranks(value) for name, value in ranks.items()}
    return int(ranks) if _is_int(ranks) else [int(r) for r in ranks]


def _check_rank_mapping(ranks: Mapping) -> None:
    bad = [name for name in ranks if not isinstance(name, str)]
    if bad or not ranks:
        raise ValueError(f"ranks as a dict must map module names (str) to ranks; got {dict(ranks)!r}")
    for value in ranks.values():
        _check_rank_values(value, "ranks")


def _ranks_of_module(ranks: Mapping, module_name: Optional[str]) -> Any:
    """The entry of a ranks dict for ``module_name``: its exact name, else the longest matching suffix."""
    if module_name in ranks:
        return ranks[module_name]
    suffixes = [key for key in ranks if module_name is not None and module_name.endswith("." + key)]
    if not suffixes:
        raise ValueError(f"ranks gives no ranks for module {module_name!r} (its keys: {sorted(ranks)})")
    return ranks[max(suffixes, key=len)]


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _type_from_name(name: Any) -> type:
    """A supported layer type from its ``module.qualname`` (only torch's and transformers' are looked up)."""
    candidates = list(SUPPORTED_TYPES) + [c for c in (transformers_conv1d(),) if c is not None]
    for cls in candidates:
        if _type_name(cls) == name:
            return cls
    raise ValueError(f"target_types: {name!r} is not a supported layer type ({supported_names()}); a subclass "
                     f"cannot be restored from a file, target it by module name instead")


_CONFIG_CONSTRAINTS = {
    "scale": [reals()],
    "alpha": [reals(), None],
    "dropout": [reals(0, 1, closed="left")],
}


def _is_int(value: Any) -> bool:
    return integers().is_satisfied_by(value)


def _as_sequence(value: Any, name: str) -> list:
    """``value``'s items, for a parameter that must be a list, tuple or set."""
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise ValueError(f"{name} must be a list, tuple or set; got {value!r}")
    return list(value)


_RANKS_EXPECTED = {
    "ranks": "a positive int, a list or tuple of positive ints (one per mode) or a callable weight_shape -> ranks",
    "ranks(...)": "positive ints, one per mode",
}


def _check_rank_values(ranks: Any, what: str) -> list:
    """The ranks as a list; a ValueError naming ``what`` unless ``ranks`` is a positive int or a
    non-empty iterable of them (a str is not one)."""
    iterable = isinstance(ranks, Iterable) and not isinstance(ranks, (str, bytes))
    values = list(ranks) if iterable else [ranks]
    if not values or not all(_is_int(rank) for rank in values):
        raise ValueError(f"{what} must be {_RANKS_EXPECTED[what]}; got {ranks!r}")
    if min(values) < 1:
        raise ValueError(f"{what} must be positive; got {ranks!r}")
    return values


def _check_target_modules(patterns: Any) -> None:
    if isinstance(patterns, str):
        try:
            re.compile(patterns)
        except re.error as error:
            raise ValueError(f"target_modules={patterns!r} is not a valid regular expression: {error}") from None
    elif patterns is not None:
        if not isinstance(patterns, (list, tuple, set, frozenset)):
            raise ValueError(f"target_modules must be None, a regular expression (str) or a list of module names; "
                             f"got {patterns!r}")
        _check_names(patterns, "target_modules")


def _check_names(names: Any, name: str) -> None:
    """Module names: a list, tuple or set of str."""
    if isinstance(names, str):
        raise ValueError(f"{name} must be a list of module names, not one str (which would be read as "
                         f"its letters); write [{names!r}]")
    bad = [item for item in _as_sequence(names, name) if not isinstance(item, str)]
    if bad:
        raise ValueError(f"{name} must hold module names (str); got {bad}")


def _checked_ranks(ranks: Any, shape: tuple, what: str) -> tuple:
    ranks = _check_rank_values(ranks, what)
    if len(ranks) != len(shape):
        raise ValueError(f"{what} gives {len(ranks)} ranks for a weight of {len(shape)} modes {shape}")
    for mode, (rank, size) in enumerate(zip(ranks, shape)):
        if rank > size:
            raise ValueError(f"{what}: rank {rank} of mode {mode} exceeds that mode's size {size} "
                             f"(weight shape {shape})")
    return tuple(int(rank) for rank in ranks)

