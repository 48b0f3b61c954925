"""FLoRA: Tucker-core adapters for N-dimensional weights, with a peft-style adapter API.

Paper: "FLoRA: Low-Rank Core Space for N-dimension" (arXiv:2405.14739), published at ICLR 2025 as
"Maintaining Structural Integrity in Parameter Spaces for Parameter Efficient Fine-tuning".

For a weight ``W`` of order ``N`` (Linear and Embedding 2, Conv1d 3, Conv2d 4, Conv3d 5; a
convolution's modes are ``out, in / groups, kernel...``) the update is a Tucker tensor
``ΔW = s · G ×_1 U_1 ×_2 U_2 ⋯ ×_N U_N`` with a small core ``G`` (ranks ``r_1..r_N``) and one
factor ``U_i`` (``d_i x r_i``) per mode: ``prod(r) + Σ d_i r_i`` trainable parameters. The core
starts at zero, so the adapted model starts exactly at the pretrained one; the factors get
Kaiming-normal initialisation (``a = sqrt(3)``, as the authors' code); ``s`` is a plain multiplier
(the authors' default) or ``alpha / max(r)``.

Beyond the authors' research code: peft's workflow (:class:`FLoRAModel`, :func:`get_flora_model`:
``save_pretrained`` / ``from_pretrained``, ``disable_adapter``, ``add_adapter`` / ``set_adapter`` /
``delete_adapter``, ``merge_and_unload``), merge / unmerge (exact), adapter-only state dicts saved as
safetensors files (:func:`save_flora_adapter`) and loaded strictly (missing, unexpected, reshaped or
retyped tensors are errors), several named adapters per model, subclasses of the supported layers
(an attention's ``out_proj``) and transformers' ``Conv1D``, per-adapter copies of the modules trained
in full (the original restored when adapters are off), Conv1d,
grouped and depthwise convolutions (the factor of the input mode has ``in_channels / groups``
rows), a working Embedding adapter, and a forward pass that runs one convolution with ``W + ΔW``
instead of two when no adapter dropout is active.

Examples
--------
>>> import torch.nn as nn
>>> from tensorkit import FLoRAConfig, inject_flora, count_trainable_parameters, merge_and_unload
>>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
>>> model = inject_flora(model, FLoRAConfig(ranks=2, target_modules=["0"], modules_to_save=["3"]))
>>> model[0]
FLoRAConv2d(adapters={'default': (2, 2, 2, 2)}, active='default', merged=False, base_layer=Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1)))
>>> count_trainable_parameters(model)  # core 2**4 + factors (8+3+3+3)*2 = 50, plus the head's copy's 2890
2940
>>> plain = merge_and_unload(model)
>>> type(plain[0]).__name__
'Conv2d'
"""

from tensorkit.flora._config import SUPPORTED_TYPES, FLoRAConfig
from tensorkit.flora._inject import (
    IncompatibleKeys,
    count_trainable_parameters,
    flora_state_dict,
    inject_flora,
    load_flora_state_dict,
    merge_and_unload,
    save_flora_adapter,
    set_active_adapter,
)
from tensorkit.flora._layers import (
    FLoRAConv1d,
    FLoRAConv2d,
    FLoRAConv3d,
    FLoRAEmbedding,
    FLoRALinear,
    FLoRATransformersConv1D,
    ModulesToSaveWrapper,
    TuckerAdapter,
)
from tensorkit.flora._model import FLoRAModel, get_flora_model

__all__ = [
    "FLoRAConfig",
    "FLoRAConv1d",
    "FLoRAConv2d",
    "FLoRAConv3d",
    "FLoRAEmbedding",
    "FLoRALinear",
    "FLoRAModel",
    "FLoRATransformersConv1D",
    "IncompatibleKeys",
    "ModulesToSaveWrapper",
    "SUPPORTED_TYPES",
    "TuckerAdapter",
    "count_trainable_parameters",
    "flora_state_dict",
    "get_flora_model",
    "inject_flora",
    "load_flora_state_dict",
    "merge_and_unload",
    "save_flora_adapter",
    "set_active_adapter",
]
