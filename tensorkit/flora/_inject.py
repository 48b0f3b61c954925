"""Putting FLoRA adapters into a model and taking them out: injection, switching, merging, and the
adapter-only state dicts and files."""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Mapping, NamedTuple, Optional, Sequence, Union

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tensorkit.flora._config import FLoRAConfig, supported_names
from tensorkit.flora._layers import ModulesToSaveWrapper, _FLoRALayer, wrapper_for


def _matches(name: str, patterns: Union[None, str, Sequence[str]]) -> bool:
    if patterns is None:
        return True
    if isinstance(patterns, str):
        return re.fullmatch(patterns, name) is not None
    return any(name == p or name.endswith("." + p) for p in patterns)


def _parent_and_child(model: nn.Module, name: str) -> tuple:
    parent_name, _, child = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def _flora_layers(model: nn.Module) -> Iterable[tuple]:
    return ((name, m) for name, m in model.named_modules() if isinstance(m, _FLoRALayer))


def _saved_wrappers(model: nn.Module) -> list:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, ModulesToSaveWrapper)]


def _own_modules(model: nn.Module) -> Iterable[tuple]:
    """``(name, module)`` of the model's modules, FLoRA's own parts (base layers, adapters, saved copies) left out."""
    inside: list = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(prefix) for prefix in inside):
            continue
        if isinstance(module, (_FLoRALayer, ModulesToSaveWrapper)):
            inside.append(name + ".")
        yield name, module


def _targets(model: nn.Module, config: FLoRAConfig) -> list:
    """The modules to wrap (or to add an adapter to); an error naming any targeted module that cannot be."""
    targets, matched = [], []
    for name, module in _own_modules(model):
        if not _matches(name, config.target_modules) or _in_saved_module(name, config.modules_to_save):
            continue
        base = module.base_layer if isinstance(module, _FLoRALayer) else module
        if wrapper_for(base) is None:
            matched.append((name, module))
            continue
        if config.target_types is not None and not issubclass(type(base), tuple(config.target_types)):
            continue
        targets.append((name, module))
    if config.target_modules is not None:
        _check_unwrappable(matched, [name for name, _ in targets])
    if not targets:
        raise ValueError(f"no module of {model.__class__.__name__} matched target_modules="
                         f"{config.target_modules!r} and target_types={config.target_types!r}")
    return targets


def _check_unwrappable(matched: list, wrapped: list) -> None:
    """Targeted modules FLoRA cannot wrap: one holding parameters of its own, or one holding parameters none
    of whose layers is wrapped (so that no targeted weight is skipped silently; parameter-free modules such as
    activations are ignored)."""
    bad = []
    for name, module in matched:
        own = [key for key, _ in module.named_parameters(recurse=False)]
        reached = any(target.startswith(name + ".") for target in wrapped)
        if not own and next(module.parameters(), None) is None:
            continue
        if own:
            bad.append(f"{name} ({type(module).__name__}, parameters {own} held directly)")
        elif not reached:
            bad.append(f"{name} ({type(module).__name__}, no supported layer inside)")
    if bad:
        raise ValueError("target_modules matched modules that FLoRA cannot wrap: " + "; ".join(bad)
                         + f". FLoRA wraps {supported_names()} and their subclasses: target those layers by name "
                           "(e.g. an attention's out_proj) or narrow the pattern")


def inject_flora(model: nn.Module, config: FLoRAConfig, adapter_name: str = "default") -> nn.Module:
    """Wrap the targeted layers of ``model`` with Tucker adapters, in place, and freeze the rest.

    Layers of a supported type or of a subclass of one are wrapped (e.g. the ``out_proj`` of
    ``nn.MultiheadAttention``, which reads the adapted weight through the wrapper's ``weight``), and
    transformers' ``Conv1D``. Each module of ``config.modules_to_save`` is kept, frozen, beside a trainable
    copy per adapter (:class:`ModulesToSaveWrapper`), so that switching adapters off restores it.

    Parameters
    ----------
    model : torch.nn.Module
    config : FLoRAConfig
    adapter_name : str, default="default"
        Injecting again with another name adds a second adapter to the same layers; the new
        adapter becomes the active one.

    Returns
    -------
    torch.nn.Module
        ``model``, with every parameter frozen except the active adapters' and the active copies of
        ``config.modules_to_save``.

    Raises
    ------
    ValueError
        If no module matches; if ``target_modules`` names a module that cannot be wrapped (one of
        another type holding parameters directly, or a container with no supported layer inside),
        or ``modules_to_save`` names one that does not exist; or if a rank does not fit its mode.
    """
    if not isinstance(config, FLoRAConfig):
        raise TypeError(f"config must be a FLoRAConfig; got {type(config).__name__}")
    if not adapter_name or "." in adapter_name:
        raise ValueError(f"adapter_name must be a non-empty name without dots; got {adapter_name!r}")
    targets = _targets(model, config)
    saved = _saved_targets(model, config.modules_to_save)
    for name, module in targets:
        if isinstance(module, _FLoRALayer):
            module.update_layer(adapter_name, config, name)
            module.set_adapter(adapter_name)
        else:
            parent, child = _parent_and_child(model, name)
            setattr(parent, child, wrapper_for(module)(module, adapter_name, config, name))
    for name, module in saved:
        if isinstance(module, ModulesToSaveWrapper):
            module.update(adapter_name)
        else:
            parent, child = _parent_and_child(model, name)
            setattr(parent, child, ModulesToSaveWrapper(module, adapter_name))
    _set_trainable(model)
    return model


def _saved_targets(model: nn.Module, names: Sequence[str]) -> list:
    """The outermost modules named by ``modules_to_save``; an error for a name that matches none."""
    found, inside = [], []
    for name, module in model.named_modules():
        if not name or any(name.startswith(prefix) for prefix in inside) or not _matches(name, list(names)):
            continue
        found.append((name, module))
        inside.append(name + ".")
    unmatched = [n for n in names if not any(_matches(name, [n]) for name, _ in found)]
    if unmatched:
        raise ValueError(f"modules_to_save names no module of {model.__class__.__name__}: {unmatched}")
    return found


def _set_trainable(model: nn.Module) -> None:
    model.requires_grad_(False)
    for _, layer in _flora_layers(model):
        if layer.active_adapter is not None:
            layer.flora_adapters[layer.active_adapter].requires_grad_(True)
    for _, wrapper in _saved_wrappers(model):
        wrapper.set_adapter(wrapper.active_adapter)


def set_active_adapter(model: nn.Module, adapter_name: Optional[str]) -> None:
    """Switch every adapted layer and module to save of ``model`` to ``adapter_name`` (None: the base model)."""
    layers = list(_flora_layers(model))
    if not layers:
        raise ValueError("the model has no FLoRA layers; call inject_flora first")
    known = sorted({name for _, layer in layers for name in layer.flora_adapters})
    if adapter_name is not None and adapter_name not in known:
        raise ValueError(f"unknown adapter {adapter_name!r}; the model has {known}")
    for _, layer in layers:   # a layer the adapter does not target runs as its base layer
        layer.set_adapter(adapter_name if adapter_name in layer.flora_adapters else None)
    for _, wrapper in _saved_wrappers(model):
        wrapper.set_adapter(adapter_name)
    _set_trainable(model)


def merge_and_unload(model: nn.Module) -> nn.Module:
    """Merge the active adapters into their layers and put the plain layers back, in place; each module to
    save is replaced by the active adapter's copy (the original when none is active)."""
    return _unload(model, merge=True)


def _unload(model: nn.Module, merge: bool) -> nn.Module:
    for name, layer in list(_flora_layers(model)):
        if merge:
            layer.merge()
        else:
            layer.unmerge()
        parent, child = _parent_and_child(model, name)
        setattr(parent, child, layer.base_layer)
    for name, wrapper in _saved_wrappers(model):
        parent, child = _parent_and_child(model, name)
        setattr(parent, child, wrapper.active_module if merge else wrapper.original_module)
    return model


def _delete_adapter(model: nn.Module, adapter_name: str) -> None:
    """Remove ``adapter_name`` from every layer and module to save (none of them merged)."""
    for _, layer in _flora_layers(model):
        if adapter_name in layer.merged_adapters:
            raise ValueError(f"adapter {adapter_name!r} is merged; unmerge before deleting it")
        for table in (layer.flora_adapters, layer.flora_dropout):
            if adapter_name in table:
                del table[adapter_name]
        if layer.active_adapter == adapter_name:
            layer.active_adapter = None
    for _, wrapper in _saved_wrappers(model):
        wrapper.delete(adapter_name)


def _is_adapter_key(key: str, adapter_name: Optional[str]) -> bool:
    """Whether a state-dict key is an adapter tensor or a module-to-save copy (of ``adapter_name`` if given)."""
    dotted = f".{key}"
    for marker in (".flora_adapters.", ".modules_to_save."):
        if marker in dotted:
            return adapter_name is None or f"{marker}{adapter_name}." in dotted
    return False


def _in_saved_module(module_name: str, saved: Sequence[str]) -> bool:
    """Whether the module, or one of the modules that contain it, is one of ``modules_to_save``."""
    parts = module_name.split(".") if module_name else []
    return bool(saved) and any(_matches(".".join(parts[:i]), list(saved)) for i in range(1, len(parts) + 1))


class IncompatibleKeys(NamedTuple):
    """What :func:`load_flora_state_dict` left out (the fields of ``torch.nn.Module.load_state_dict``'s result).

    Attributes
    ----------
    missing_keys : list of str
        Adapter tensors of the model (and of its modules to save) that the state lacked.
    unexpected_keys : list of str
        Tensors of the state that the model has no place for.
    """

    missing_keys: list
    unexpected_keys: list


def _adapter_state(model: nn.Module, adapter_name: Optional[str]) -> dict:
    """The model's adapter tensors (all adapters', or ``adapter_name``'s) and those of its modules to save."""
    layers = [layer for _, layer in _flora_layers(model)]
    if not layers:
        raise ValueError(f"no FLoRA adapters are injected in this {type(model).__name__}; call inject_flora "
                         f"with the configuration the adapter was trained with first")
    names = sorted({name for layer in layers for name in layer.flora_adapters})
    if adapter_name is not None and adapter_name not in names:
        raise ValueError(f"adapter_name={adapter_name!r} is not an adapter of the model; it has {names}")
    return {key: value for key, value in model.state_dict().items() if _is_adapter_key(key, adapter_name)}


def flora_state_dict(model: nn.Module, adapter_name: Optional[str] = None) -> dict:
    """Only the adapter tensors (all adapters, or ``adapter_name``'s) and the modules to save.

    Raises
    ------
    ValueError
        If no adapters are injected in ``model``, or ``adapter_name`` is not one of them.

    Examples
    --------
    >>> import torch.nn as nn
    >>> model = inject_flora(nn.Sequential(nn.Linear(4, 3)), FLoRAConfig(ranks=2))
    >>> sorted(flora_state_dict(model))
    ['0.flora_adapters.default.core', '0.flora_adapters.default.factors.0', '0.flora_adapters.default.factors.1']
    """
    return {key: value.detach().clone() for key, value in _adapter_state(model, adapter_name).items()}


def save_flora_adapter(model: nn.Module, path: Union[str, os.PathLike], adapter_name: Optional[str] = None) -> None:
    """Write :func:`flora_state_dict` to a safetensors file, which :func:`load_flora_state_dict` reads.

    A safetensors file holds tensors and their names only: loading it runs no code, unlike a pickle.

    Parameters
    ----------
    model : torch.nn.Module
        With adapters injected.
    path : str or os.PathLike
        The file to write (replaced if it exists).
    adapter_name : str, optional
        Save only this adapter (and the modules to save); None saves all adapters.

    Raises
    ------
    ValueError
        If no adapters are injected in ``model``, or ``adapter_name`` is not one of them.

    Examples
    --------
    >>> import tempfile, torch.nn as nn
    >>> model = inject_flora(nn.Sequential(nn.Linear(4, 3)), FLoRAConfig(ranks=2))
    >>> path = tempfile.mkdtemp() + "/adapter.safetensors"
    >>> save_flora_adapter(model, path)
    >>> load_flora_state_dict(inject_flora(nn.Sequential(nn.Linear(4, 3)), FLoRAConfig(ranks=2)), path)
    IncompatibleKeys(missing_keys=[], unexpected_keys=[])
    """
    state = {key: value.contiguous() for key, value in flora_state_dict(model, adapter_name).items()}
    save_file(state, path, metadata={"format": "pt"})


def load_flora_state_dict(model: nn.Module, state: Union[str, os.PathLike, Mapping[str, torch.Tensor]],
                          strict: bool = True, adapter_name: Optional[str] = None) -> IncompatibleKeys:
    """Load an adapter saved by :func:`save_flora_adapter` (or :func:`flora_state_dict`) into ``model``.

    ``model`` must have the same adapters injected (names, targets, ranks) as the model that was
    saved. Tensors are checked before anything is loaded: a failed load leaves ``model`` unchanged.

    Parameters
    ----------
    model : torch.nn.Module
    state : str, os.PathLike or mapping of str to torch.Tensor
        A safetensors file written by :func:`save_flora_adapter`, or a state dict as
        :func:`flora_state_dict` returns.
    strict : bool, default=True
        Every adapter tensor of ``model`` (and of its modules to save) must be in ``state``, and
        every tensor of ``state`` must be one of them. With False, the tensors found in both are
        loaded and the others are returned.
    adapter_name : str, optional
        Expect only this adapter's tensors (and the modules to save), as
        ``flora_state_dict(model, adapter_name)`` saved them; None expects all adapters of ``model``.

    Returns
    -------
    IncompatibleKeys
        ``missing_keys`` (the model's adapter tensors absent from ``state``) and
        ``unexpected_keys`` (tensors of ``state`` the model has no place for); both empty when
        ``strict``.

    Raises
    ------
    ValueError
        If no adapters are injected in ``model``, ``adapter_name`` is not one of them, ``state``
        is a file that safetensors cannot read, a tensor's shape or dtype differs from the model's
        (the key and both shapes or dtypes are named), or, when ``strict``, keys are missing or
        unexpected (all are listed).
    TypeError
        If ``state`` is neither a path nor a mapping of str to tensors.
    FileNotFoundError
        If the file ``state`` does not exist.
    """
    expected = _adapter_state(model, adapter_name)
    state = _renamed_saved_modules(model, _read_state(state), adapter_name)
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    problems = []
    if strict and missing:
        problems.append(f"missing keys: {missing}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {unexpected}")
    problems += [_mismatch(key, state[key], expected[key]) for key in state if key in expected]
    problems = [problem for problem in problems if problem]
    if problems:
        hint = "inject the adapters the state was saved from (names, targets, ranks, dtype) first"
        if strict and (missing or unexpected):
            hint += "; strict=False loads the tensors found in both and returns the other keys"
        raise ValueError(f"cannot load the adapter state into this {type(model).__name__}:\n  "
                         + "\n  ".join(problems) + f"\n{hint}")
    model.load_state_dict({key: state[key] for key in state if key in expected}, strict=False)
    return IncompatibleKeys(missing, unexpected)


def _renamed_saved_modules(model: nn.Module, state: Mapping, adapter_name: Optional[str]) -> dict:
    """Keys of a module to save written as its plain parameters (``head.weight``, as files saved before the
    per-adapter copies) renamed to the copy of ``adapter_name`` (the active adapter when None)."""
    wrappers = _saved_wrappers(model)
    renamed = {}
    for key, value in state.items():
        for name, wrapper in wrappers:
            rest = key[len(name) + 1:] if key.startswith(name + ".") else None
            if rest is None or rest.startswith(("modules_to_save.", "original_module.")):
                continue
            target = adapter_name or wrapper.active_adapter
            if target is not None:
                key = f"{name}.modules_to_save.{target}.{rest}"
            break
        renamed[key] = value
    return renamed


def _read_state(state: Any) -> Mapping:
    """The tensors of a safetensors file, or ``state`` itself when it is a mapping of str to tensors."""
    if isinstance(state, (str, os.PathLike)):
        try:
            return load_file(state)
        except SafetensorError as error:
            raise ValueError(f"{os.fspath(state)} is not a safetensors file ({error}); adapters are saved with "
                             f"save_flora_adapter (a torch.save file loads with torch.load(path, weights_only=True), "
                             f"whose dict this function takes)") from error
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be the path of a safetensors file or a mapping of str to torch.Tensor; "
                        f"got {type(state).__name__}")
    bad = [key for key, value in state.items() if not (isinstance(key, str) and isinstance(value, torch.Tensor))]
    if bad:
        raise TypeError(f"state must map str keys to torch.Tensor values; not so for {bad[:5]}")
    return state


def _mismatch(key: str, saved: torch.Tensor, own: torch.Tensor) -> Optional[str]:
    """What makes the saved tensor unfit for the model's (None when it fits)."""
    if saved.shape != own.shape:
        return f"{key}: saved shape {tuple(saved.shape)} differs from the model's {tuple(own.shape)}"
    if saved.dtype != own.dtype:
        return f"{key}: saved dtype {saved.dtype} differs from the model's {own.dtype}"
    return None


def count_trainable_parameters(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
