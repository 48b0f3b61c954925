"""tensorkit's cases of the issue-32 corpus: FLoRA adapter files and configurations, and the data
of KroneckerSBL and FunBaT.

Every adapter file is generated here from small seeded models (safetensors' ``save``; one by
``torch.save``, to show it is refused). Loading is strict: a file that does not fit the model is a
``ValueError`` that names the keys (or the shapes and dtypes) at fault, and loads nothing.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save

from tensorkit import (
    FLoRAConfig,
    FunBaT,
    KroneckerSBL,
    flora_state_dict,
    inject_flora,
    load_flora_state_dict,
    nmse_db,
)
from tensorkit.datasets import make_functional_tucker, make_kronecker_problem
from tensorkit.flora import IncompatibleKeys
from tensorkit.validation import NonFiniteResultError
from tests.fuzz.corpus import Case

ADAPTER = "adapter.safetensors"
LAYER_KEYS = {i: [f"{i}.flora_adapters.default.core", f"{i}.flora_adapters.default.factors.0",
                  f"{i}.flora_adapters.default.factors.1"] for i in (0, 1)}
PROBE = torch.linspace(-1.0, 1.0, 20).reshape(5, 4)


def adapted_model(seed: int = 0, trained: bool = True) -> nn.Module:
    """Two Linear layers with rank-2 adapters; ``trained`` gives their cores seeded random values."""
    torch.manual_seed(seed)
    model = inject_flora(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)), FLoRAConfig(ranks=2))
    if trained:
        with torch.no_grad():
            for layer in (model[0], model[1]):
                layer.flora_adapters["default"].core.normal_()
    return model


def other_model() -> nn.Module:
    """A different architecture (one convolution) with its own adapter."""
    torch.manual_seed(1)
    return inject_flora(nn.Sequential(nn.Conv2d(1, 4, 3)), FLoRAConfig(ranks=2))


def pickled(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


TRAINED = flora_state_dict(adapted_model())


def changed(key: str, value: torch.Tensor) -> dict:
    return {**TRAINED, key: value}


def without(keys: list) -> dict:
    return {key: value for key, value in TRAINED.items() if key not in keys}


def load_file_into_fresh(**kwargs):
    return lambda folder: load_flora_state_dict(adapted_model(trained=False), folder / ADAPTER, **kwargs)


def load_into_fresh_and_keep(folder: Path) -> tuple:
    fresh = adapted_model(trained=False)
    return load_flora_state_dict(fresh, folder / ADAPTER), fresh


def check_round_trip(result: tuple, folder: Path) -> None:
    keys, fresh = result
    assert keys == IncompatibleKeys([], [])
    assert torch.equal(fresh(PROBE), adapted_model()(PROBE))


def check_strict_false(result: IncompatibleKeys, folder: Path) -> None:
    assert result == IncompatibleKeys(missing_keys=LAYER_KEYS[1], unexpected_keys=[])


LOAD_CASES = [
    Case("tensorkit-flora-load-round-trip", "an adapter file loads into the same injection and gives the same outputs",
         run=load_into_fresh_and_keep, files={ADAPTER: save(TRAINED)}, check=check_round_trip),
    Case("tensorkit-flora-load-empty-file", "an adapter file holding no tensors: every adapter tensor is missing",
         run=load_file_into_fresh(), files={ADAPTER: save({})}, raises=ValueError,
         match=re.escape(f"missing keys: {LAYER_KEYS[0] + LAYER_KEYS[1]}")),
    Case("tensorkit-flora-load-empty-state", "an empty state dict: every adapter tensor is missing",
         run=lambda folder: load_flora_state_dict(adapted_model(trained=False), {}), raises=ValueError,
         match=re.escape(f"missing keys: {LAYER_KEYS[0] + LAYER_KEYS[1]}")),
    Case("tensorkit-flora-load-missing-layer", "a file without the second layer's adapter lists its tensors",
         run=load_file_into_fresh(), files={ADAPTER: save(without(LAYER_KEYS[1]))}, raises=ValueError,
         match=re.escape(f"missing keys: {LAYER_KEYS[1]}")),
    Case("tensorkit-flora-load-missing-layer-not-strict", "strict=False loads the first layer and returns the "
         "second layer's keys as missing", run=load_file_into_fresh(strict=False),
         files={ADAPTER: save(without(LAYER_KEYS[1]))}, check=check_strict_false),
    Case("tensorkit-flora-load-wrong-shape", "a core of another rank names the key and both shapes",
         run=load_file_into_fresh(), files={ADAPTER: save(changed(LAYER_KEYS[0][0], torch.zeros(3, 3)))},
         raises=ValueError,
         match=re.escape("0.flora_adapters.default.core: saved shape (3, 3) differs from the model's (2, 2)")),
    Case("tensorkit-flora-load-wrong-dtype", "a float64 core for a float32 model names the key and both dtypes",
         run=load_file_into_fresh(),
         files={ADAPTER: save(changed(LAYER_KEYS[0][0], TRAINED[LAYER_KEYS[0][0]].double()))},
         raises=ValueError,
         match=re.escape("0.flora_adapters.default.core: saved dtype torch.float64 differs from the model's "
                         "torch.float32")),
    Case("tensorkit-flora-load-other-model",
         "the adapter file of another architecture: missing and unexpected keys and differing shapes all listed",
         run=load_file_into_fresh(), files={ADAPTER: save(flora_state_dict(other_model()))}, raises=ValueError,
         match=r"missing keys: \['1\.flora_adapters.*\n  unexpected keys: \['0\.flora_adapters\.default\.factors\.2'"),
    Case("tensorkit-flora-load-pickle", "a torch.save pickle is refused unread, naming the file",
         run=load_file_into_fresh(), files={ADAPTER: pickled(TRAINED)}, raises=ValueError,
         match=r"adapter\.safetensors is not a safetensors file"),
    Case("tensorkit-flora-load-truncated", "a safetensors file cut in half is refused, naming the file",
         run=load_file_into_fresh(), files={ADAPTER: save(TRAINED)[:len(save(TRAINED)) // 2]}, raises=ValueError,
         match=r"adapter\.safetensors is not a safetensors file"),
    Case("tensorkit-flora-load-no-adapters", "loading into a model without adapters says to inject them first",
         run=lambda folder: load_flora_state_dict(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)), folder / ADAPTER),
         files={ADAPTER: save(TRAINED)}, raises=ValueError,
         match="no FLoRA adapters are injected in this Sequential; call inject_flora"),
]

# (parameter, absurd value, label for the case name)
BAD_CONFIGS = [
    ("ranks", 2.5, "float"), ("ranks", 0, "zero"), ("ranks", -1, "negative"), ("ranks", True, "bool"),
    ("ranks", math.nan, "nan"), ("ranks", (2, 0.5), "float-in-tuple"), ("ranks", "4", "str"), ("ranks", (), "empty"),
    ("target_modules", "(", "unclosed-group"), ("target_modules", "[a-", "unclosed-set"),
    ("target_modules", [1], "int"),
    ("scale", math.inf, "inf"), ("scale", math.nan, "nan"), ("scale", "1", "str"),
    ("alpha", math.inf, "inf"), ("alpha", -math.inf, "minus-inf"),
    ("dropout", 1.0, "one"), ("dropout", -0.1, "negative"), ("dropout", math.nan, "nan"), ("dropout", "0.5", "str"),
    ("modules_to_save", "head", "one-str"), ("target_types", (nn.ReLU,), "unsupported"),
]


def config_case(name: str, value, label: str) -> Case:
    return Case(f"tensorkit-flora-config-{name.replace('_', '-')}-{label}",
                f"FLoRAConfig({name}={value!r}) is refused naming {name}",
                run=lambda folder: FLoRAConfig(**{name: value}), raises=ValueError,
                match=f"^(The '{name}' parameter of FLoRAConfig|{name}\\b)")


CONFIG_CASES = [config_case(*bad) for bad in BAD_CONFIGS]

SBL_PROBLEM = make_kronecker_problem(((6, 8), (5, 7)), support_sizes=2, random_state=0)
COMPLEX_PROBLEM = make_kronecker_problem(((6, 8), (5, 7)), support_sizes=2, snr_db=30, complex_valued=True,
                                         random_state=0)


def fit_sbl(X, y, **params):
    return lambda folder: KroneckerSBL(**params).fit(X, y)


def check_complex_recovery(model: KroneckerSBL, folder: Path) -> None:
    assert np.iscomplexobj(model.coef_) and nmse_db(model.coef_, COMPLEX_PROBLEM.coef) < -15


A1, A2 = SBL_PROBLEM.factors
SBL_CASES = [
    Case("tensorkit-sbl-one-factor-array", "one factor matrix where the list of factors belongs",
         run=fit_sbl(A1, SBL_PROBLEM.y), raises=ValueError, match=r"^X must be a list or tuple of factor matrices"),
    Case("tensorkit-sbl-stacked-factors", "factors stacked in one 3-D array",
         run=fit_sbl(np.stack([A1, A1]), np.ones(36)), raises=ValueError, match=r"pass list\(X\)"),
    Case("tensorkit-sbl-nan-y", "NaN in y",
         run=fit_sbl(SBL_PROBLEM.factors, np.where(np.arange(30) == 3, np.nan, SBL_PROBLEM.y)), raises=ValueError,
         match=r"^y contains NaN or infinity"),
    Case("tensorkit-sbl-inf-factor", "infinity in the second factor",
         run=fit_sbl([A1, np.where(A2 > 0.5, np.inf, A2)], SBL_PROBLEM.y), raises=ValueError,
         match=r"^X\[1\] contains NaN or infinity"),
    Case("tensorkit-sbl-y-beyond-float32", "y of 1e150 with dtype float32 would become infinity",
         run=fit_sbl(SBL_PROBLEM.factors, SBL_PROBLEM.y * 1e150, dtype="float32"), raises=ValueError,
         match=r"^y holds values beyond the range of float32"),
    Case("tensorkit-sbl-overflowing-y", "y of 1e160: the EM overflows float64",
         run=fit_sbl(SBL_PROBLEM.factors, SBL_PROBLEM.y * 1e160), raises=NonFiniteResultError,
         match=r"^KroneckerSBL's coef_ .*likely cause: y or the factors are too large"),
    Case("tensorkit-sbl-complex", "complex dictionaries and measurements are supported, not cast to real",
         run=fit_sbl(COMPLEX_PROBLEM.factors, COMPLEX_PROBLEM.y), check=check_complex_recovery),
]

FUNBAT_DATA = make_functional_tucker(n_entries=120, n_modes=2, rank=1, random_state=0)


def fit_funbat(X, y):
    return lambda folder: FunBaT(rank=1, n_epochs=2, n_init=1, random_state=0, verbose=0).fit(X, y)


FUNBAT_CASES = [
    Case("tensorkit-funbat-complex-x", "complex coordinates are refused before any cast",
         run=fit_funbat(FUNBAT_DATA.X + 0j, FUNBAT_DATA.y), raises=TypeError, match=r"^X must hold real numbers"),
    Case("tensorkit-funbat-complex-y", "complex values are refused before any cast",
         run=fit_funbat(FUNBAT_DATA.X, FUNBAT_DATA.y + 1j), raises=TypeError, match=r"^y must hold real numbers"),
    Case("tensorkit-funbat-nan-x", "a NaN coordinate",
         run=fit_funbat(np.where(np.arange(240).reshape(120, 2) == 7, np.nan, FUNBAT_DATA.X), FUNBAT_DATA.y),
         raises=ValueError, match=r"Input X contains NaN"),
    Case("tensorkit-funbat-range-overflow", "coordinates spanning more than float64 can hold",
         run=fit_funbat(np.vstack([[[-1.7e308, 0.5], [1.7e308, 0.5]], FUNBAT_DATA.X[2:]]), FUNBAT_DATA.y),
         raises=ValueError, match=r"^column 0 of X spans .*a range beyond float64"),
    Case("tensorkit-funbat-overflowing-y", "values of 1e160 cannot be standardised in float64",
         run=fit_funbat(FUNBAT_DATA.X, FUNBAT_DATA.y * 1e160), raises=NonFiniteResultError,
         match=r"^FunBaT's fitted posterior .*likely cause: y is too large"),
]

CASES = LOAD_CASES + CONFIG_CASES + SBL_CASES + FUNBAT_CASES
