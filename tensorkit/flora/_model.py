"""FLoRAModel: a base model with FLoRA adapters, saved and loaded the way peft's ``PeftModel`` is."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import torch.nn as nn
from safetensors.torch import save_file

from tensorkit.flora._config import FLoRAConfig
from tensorkit.flora._inject import (
    _delete_adapter,
    _flora_layers,
    _read_state,
    _set_trainable,
    _unload,
    flora_state_dict,
    inject_flora,
    load_flora_state_dict,
    set_active_adapter,
)

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
_ADAPTER_MARKERS = (".flora_adapters.", ".modules_to_save.")


class FLoRAModel(nn.Module):
    """A base model with FLoRA adapters, with peft's workflow (``PeftModel``).

    The adapters are injected into ``base_model`` in place (:func:`inject_flora`); calling the
    ``FLoRAModel`` calls the base model, and attributes it does not have are looked up on the base
    model. :meth:`save_pretrained` writes ``adapter_config.json`` and ``adapter_model.safetensors``
    (adapter tensors and the trained copies of ``modules_to_save`` only), and :meth:`from_pretrained`
    re-injects a fresh base model from the saved configuration and loads them, checking every tensor's
    shape against the base model.

    Parameters
    ----------
    base_model : torch.nn.Module
        The pretrained model; modified in place.
    config : FLoRAConfig
    adapter_name : str, default="default"

    Attributes
    ----------
    base_model : torch.nn.Module
        The model with its adapters.
    flora_config : dict of str to FLoRAConfig
        The configuration of each adapter.

    See Also
    --------
    get_flora_model : the same, as a function (peft's ``get_peft_model``).

    Examples
    --------
    >>> import tempfile, torch, torch.nn as nn
    >>> from tensorkit import FLoRAConfig, FLoRAModel, get_flora_model
    >>> def base():
    ...     torch.manual_seed(0)
    ...     return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> model = get_flora_model(base(), FLoRAConfig(ranks=2, target_modules=["0"], modules_to_save=["2"]))
    >>> with torch.no_grad():
    ...     _ = model.base_model[0].flora_adapters["default"].core.normal_()
    >>> folder = tempfile.mkdtemp()
    >>> model.save_pretrained(folder)
    >>> loaded = FLoRAModel.from_pretrained(base(), folder)
    >>> x = torch.randn(3, 4)
    >>> torch.equal(loaded(x), model(x))
    True
    >>> with model.disable_adapter():
    ...     torch.equal(model(x), base()(x))
    True
    """

    def __init__(self, base_model: nn.Module, config: FLoRAConfig, adapter_name: str = "default"):
        super().__init__()
        if isinstance(base_model, FLoRAModel):
            raise TypeError("base_model is already a FLoRAModel; add another adapter with add_adapter")
        self.base_model = inject_flora(base_model, config, adapter_name)
        self.flora_config = {adapter_name: config}

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.base_model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_model":
                raise
            return getattr(self.base_model, name)

    # adapters ---------------------------------------------------------------------------------------

    @property
    def active_adapter(self) -> Optional[str]:
        """The name of the active adapter (None while :meth:`disable_adapter` is in effect)."""
        layers = [layer for _, layer in _flora_layers(self.base_model)]
        return layers[0].active_adapter if layers else None

    def add_adapter(self, adapter_name: str, config: FLoRAConfig) -> None:
        """Inject another adapter; the active adapter stays the same (:meth:`set_adapter` switches)."""
        if adapter_name in self.flora_config:
            raise ValueError(f"adapter {adapter_name!r} exists; delete_adapter it first or pick another name")
        active = self.active_adapter
        inject_flora(self.base_model, config, adapter_name)
        self.flora_config[adapter_name] = config
        set_active_adapter(self.base_model, active)

    def set_adapter(self, adapter_name: str) -> None:
        """Make ``adapter_name`` the active (and the only trainable) adapter."""
        self._check_known(adapter_name)
        set_active_adapter(self.base_model, adapter_name)

    def delete_adapter(self, adapter_name: str) -> None:
        """Remove an adapter; if it was active, the first remaining one (by name) becomes active."""
        self._check_known(adapter_name)
        if len(self.flora_config) == 1:
            raise ValueError(f"{adapter_name!r} is the only adapter; unload() gives the base model back")
        was_active = self.active_adapter == adapter_name
        _delete_adapter(self.base_model, adapter_name)
        del self.flora_config[adapter_name]
        if was_active:
            set_active_adapter(self.base_model, sorted(self.flora_config)[0])

    @contextlib.contextmanager
    def disable_adapter(self) -> Iterator[None]:
        """Within the block the model computes as the base model (merged adapters are unmerged), and
        the original modules to save run; on exit the previous state is restored."""
        active = self.active_adapter
        merged = [layer for _, layer in _flora_layers(self.base_model) if layer.merged]
        for layer in merged:
            layer.unmerge()
        set_active_adapter(self.base_model, None)
        try:
            yield
        finally:
            set_active_adapter(self.base_model, active)
            for layer in merged:
                layer.merge()

    def merge_adapter(self) -> None:
        """Merge the active adapter into the base weights (exactly undone by :meth:`unmerge_adapter`)."""
        for _, layer in _flora_layers(self.base_model):
            layer.merge()

    def unmerge_adapter(self) -> None:
        for _, layer in _flora_layers(self.base_model):
            layer.unmerge()

    def merge_and_unload(self) -> nn.Module:
        """The base model with the active adapter merged and the plain layers back (and the active copies
        of the modules to save in place of the originals)."""
        return _unload(self.base_model, merge=True)

    def unload(self) -> nn.Module:
        """The base model as it was: adapters removed without merging, original modules to save back."""
        return _unload(self.base_model, merge=False)

    def get_base_model(self) -> nn.Module:
        return self.base_model

    def get_nb_trainable_parameters(self) -> tuple:
        """``(trainable, total)`` numbers of parameters."""
        parameters = list(self.parameters())
        return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)

    def print_trainable_parameters(self) -> None:
        trainable, total = self.get_nb_trainable_parameters()
        print(f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100 * trainable / total:.4f}")

    def _config_to_save(self, adapter_name: str) -> FLoRAConfig:
        """The adapter's configuration, with ranks given by a callable replaced by the ranks it gave each layer."""
        config = self.flora_config[adapter_name]
        if not callable(config.ranks):
            return config
        ranks = {name: list(layer.flora_adapters[adapter_name].ranks) for name, layer in _flora_layers(self.base_model)
                 if adapter_name in layer.flora_adapters}
        return dataclasses.replace(config, ranks=ranks)

    def _check_known(self, adapter_name: str) -> None:
        if adapter_name not in self.flora_config:
            raise ValueError(f"unknown adapter {adapter_name!r}; the model has {sorted(self.flora_config)}")

    # files ------------------------------------------------------------------------------------------

    def save_pretrained(self, save_directory: Union[str, os.PathLike],
                        selected_adapters: Optional[Sequence[str]] = None) -> None:
        """Write each adapter's ``adapter_config.json`` and ``adapter_model.safetensors``.

        The ``"default"`` adapter goes into ``save_directory`` itself, every other one into
        ``save_directory/<name>`` (peft's layout). The tensor names in the file leave the adapter's name
        out, so a file loads under any name.

        Parameters
        ----------
        save_directory : str or os.PathLike
            Created if absent.
        selected_adapters : sequence of str, optional
            The adapters to save (all by default).

        Raises
        ------
        ValueError
            If an adapter is unknown. Ranks given as a callable are written as the ranks it gave each layer.
        """
        names = list(self.flora_config) if selected_adapters is None else list(selected_adapters)
        for name in names:
            self._check_known(name)
        root = Path(save_directory)
        for name in names:
            folder = root if name == "default" else root / name
            config = self._config_to_save(name).to_dict()   # fails before anything is written
            state = {_file_key(key, name): value.contiguous()
                     for key, value in flora_state_dict(self.base_model, name).items()}
            folder.mkdir(parents=True, exist_ok=True)
            save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
            config["base_model_class"] = type(self.base_model).__name__
            config["library_version"] = _library_version()
            (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, base_model: nn.Module, model_id: Union[str, os.PathLike], adapter_name: str = "default",
                        is_trainable: bool = False) -> "FLoRAModel":
        """Inject the adapter saved in ``model_id`` into a fresh ``base_model`` and load its tensors.

        Parameters
        ----------
        base_model : torch.nn.Module
            A model of the architecture the adapter was trained on, with its pretrained weights.
        model_id : str or os.PathLike
            A folder written by :meth:`save_pretrained`.
        adapter_name : str, default="default"
        is_trainable : bool, default=False
            False (inference, peft's default): the adapter is frozen and the model put in eval mode.

        Raises
        ------
        FileNotFoundError
            If the folder lacks ``adapter_config.json`` or ``adapter_model.safetensors``.
        ValueError
            If the configuration is not a FLoRA one, the base model lacks a module the adapter targets,
            or a saved tensor's shape differs from what the base model gives (each key is named, with
            both shapes).
        """
        config, state = _read_folder(model_id)
        model = cls(base_model, config, adapter_name)
        model._load_state(state, adapter_name, model_id)
        model._finish_loading(is_trainable)
        return model

    def load_adapter(self, model_id: Union[str, os.PathLike], adapter_name: str, is_trainable: bool = False) -> None:
        """Load a saved adapter as a further adapter (not made active; see :meth:`set_adapter`)."""
        config, state = _read_folder(model_id)
        self.add_adapter(adapter_name, config)
        try:
            self._load_state(state, adapter_name, model_id)
        except ValueError:
            self.delete_adapter(adapter_name)
            raise
        self._finish_loading(is_trainable)

    def _load_state(self, state: dict, adapter_name: str, model_id: Any) -> None:
        renamed = {_model_key(key, adapter_name): value for key, value in state.items()}
        try:
            load_flora_state_dict(self.base_model, renamed, strict=True, adapter_name=adapter_name)
        except ValueError as error:
            raise ValueError(f"the adapter in {os.fspath(model_id)} does not fit this base model "
                             f"({type(self.base_model).__name__}): {error}") from None

    def _finish_loading(self, is_trainable: bool) -> None:
        if not is_trainable:
            self.requires_grad_(False)
            self.eval()
        else:
            _set_trainable(self.base_model)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(adapters={sorted(self.flora_config)}, active={self.active_adapter!r}, "
                f"base_model={self.base_model!r})")


def get_flora_model(model: nn.Module, config: FLoRAConfig, adapter_name: str = "default") -> FLoRAModel:
    """Wrap ``model`` in a :class:`FLoRAModel` with one adapter (peft's ``get_peft_model``).

    Examples
    --------
    >>> import torch.nn as nn
    >>> model = get_flora_model(nn.Sequential(nn.Linear(6, 4)), FLoRAConfig(ranks=2))
    >>> model.get_nb_trainable_parameters()   # core 2 x 2 + factors (4 + 6) x 2
    (24, 52)
    """
    return FLoRAModel(model, config, adapter_name)


def _file_key(key: str, adapter_name: str) -> str:
    """A state-dict key without the adapter's name (``0.flora_adapters.default.core`` -> ``0.flora_adapters.core``)."""
    for marker in _ADAPTER_MARKERS:
        key = key.replace(f"{marker}{adapter_name}.", marker, 1)
    return key


def _model_key(key: str, adapter_name: str) -> str:
    for marker in _ADAPTER_MARKERS:
        if marker in f".{key}":
            head, _, tail = f".{key}".partition(marker)
            return f"{head}{marker}{adapter_name}.{tail}"[1:]
    return key


def _read_folder(model_id: Any) -> tuple:
    folder = Path(model_id)
    missing = [name for name in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} holds no saved FLoRA adapter: {missing} not found "
                                f"(FLoRAModel.save_pretrained writes both)")
    try:
        values = json.loads((folder / CONFIG_NAME).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{folder / CONFIG_NAME} is not valid JSON: {error}") from None
    if isinstance(values, dict):
        values = {k: v for k, v in values.items() if k not in ("base_model_class", "library_version")}
    config = FLoRAConfig.from_dict(values)
    return config, dict(_read_state(str(folder / WEIGHTS_NAME)))


def _library_version() -> Optional[str]:
    try:
        return metadata.version("tensorgraph_learn")
    except metadata.PackageNotFoundError:
        return None
