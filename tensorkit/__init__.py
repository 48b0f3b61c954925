"""tensorkit: tensor models on one device layer (:mod:`tensorkit.backend`).

- :mod:`tensorkit.backend`: the device, dtype and randomness layer that ``graphkit`` and
  ``recsys`` share.
- :mod:`tensorkit.kron`: Kronecker-structured linear algebra that never forms the product.
- FLoRA (:func:`inject_flora`, :class:`FLoRAConfig`, ...): Tucker-core adapters for Linear,
  Conv1d/2d/3d and Embedding weights with a peft-style API (merge, adapter-only state dicts saved
  as safetensors files and loaded strictly).
- :class:`FunBaT`: functional Bayesian Tucker decomposition of continuous-indexed tensors
  (Fang et al., ICLR 2024): Matérn-GP latent functions per mode, Kalman/RTS smoothing and
  conditional-EP updates, predictions with calibrated uncertainty anywhere.
- :class:`KroneckerSBL`: sparse Bayesian learning for Kronecker-structured dictionaries
  (He and Joseph, IEEE TSP 2024), with :func:`nmse_db` and :func:`support_recovery_rate` to score
  recoveries.
- :mod:`tensorkit.datasets`: synthetic data from these models with the truth kept
  (:func:`make_kronecker_problem`, :func:`make_functional_tucker`).
"""

from tensorkit._version import __version__
from tensorkit.utils import lazy_exports

# Names are imported on first use, so that importing one module of the toolkit does not import all of it.
_EXPORTS = {
    **dict.fromkeys(("check_random_state", "resolve_device", "resolve_dtype"), "tensorkit.backend"),
    **dict.fromkeys(("FLoRAConfig", "FLoRAConv1d", "FLoRAConv2d", "FLoRAConv3d", "FLoRAEmbedding", "FLoRALinear", "FLoRAModel",
                     "count_trainable_parameters", "flora_state_dict", "get_flora_model", "inject_flora",
                     "load_flora_state_dict", "merge_and_unload", "save_flora_adapter", "set_active_adapter"), "tensorkit.flora"),
    **dict.fromkeys(("FunctionalTensor", "make_functional_tucker", "make_kronecker_problem"), "tensorkit.datasets"),
    "FunBaT": "tensorkit.funbat",
    **dict.fromkeys(("KroneckerSBL", "kronecker_sbl", "nmse_db", "support_recovery_rate"), "tensorkit.sbl"),
}
_SUBMODULES = ("backend", "base", "datasets", "distributed", "flora", "funbat", "kron", "sbl", "utils", "validation")

__all__ = [
    "FLoRAConfig",
    "FLoRAConv1d",
    "FLoRAConv2d",
    "FLoRAConv3d",
    "FLoRAEmbedding",
    "FLoRALinear",
    "FLoRAModel",
    "FunBaT",
    "FunctionalTensor",
    "KroneckerSBL",
    "__version__",
    "backend",
    "check_random_state",
    "count_trainable_parameters",
    "datasets",
    "flora_state_dict",
    "get_flora_model",
    "inject_flora",
    "kron",
    "kronecker_sbl",
    "load_flora_state_dict",
    "make_functional_tucker",
    "make_kronecker_problem",
    "merge_and_unload",
    "nmse_db",
    "resolve_device",
    "resolve_dtype",
    "save_flora_adapter",
    "set_active_adapter",
    "support_recovery_rate",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)
