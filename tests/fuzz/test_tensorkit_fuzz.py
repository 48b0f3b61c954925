"""Property-based tests of tensorkit's input integrity (issue 32).

- FLoRA: random configurations on small models save to a safetensors file and load back exactly
  (same tensors bit for bit, same outputs); random absurd configuration values always give a
  ValueError or TypeError naming the parameter, never another exception or silent acceptance.
- KroneckerSBL and FunBaT: random corruptions of valid data (NaN, infinity, complex values, wrong
  lengths and dimensions, one array for the factor list) always give a ValueError or TypeError
  naming the argument (``X`` or ``y``) before anything is fitted.
"""

import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from tensorkit import (
    FLoRAConfig,
    FunBaT,
    KroneckerSBL,
    flora_state_dict,
    inject_flora,
    load_flora_state_dict,
    save_flora_adapter,
    set_active_adapter,
)
from tensorkit.datasets import make_functional_tucker, make_kronecker_problem
from tensorkit.flora import IncompatibleKeys

# (module factory, input): one of each supported kind, small enough for many examples a second
LAYERS = {
    "linear": (lambda: nn.Linear(5, 4), lambda: torch.linspace(-1, 1, 15).reshape(3, 5)),
    "conv1d": (lambda: nn.Conv1d(3, 4, 3, padding=1), lambda: torch.linspace(-1, 1, 42).reshape(2, 3, 7)),
    "conv2d": (lambda: nn.Conv2d(4, 6, 3, groups=2), lambda: torch.linspace(-1, 1, 200).reshape(2, 4, 5, 5)),
    "embedding": (lambda: nn.Embedding(7, 4), lambda: torch.tensor([[0, 3, 6], [1, 1, 5]])),
}


@st.composite
def flora_setups(draw):
    """A layer kind, one or two named adapters with their configurations, and a seed for their values."""
    kind = draw(st.sampled_from(sorted(LAYERS)))
    shape = tuple(LAYERS[kind][0]().weight.shape)
    configs = {}
    for name in draw(st.sampled_from([["default"], ["a", "b"]])):
        ranks = draw(st.one_of(st.integers(1, 4), st.tuples(*[st.integers(1, min(d, 3)) for d in shape])))
        alpha = draw(st.none() | st.floats(0.5, 16))
        scale = draw(st.floats(-3, 3, allow_nan=False))
        dropout = draw(st.floats(0, 0.9, exclude_max=True))
        configs[name] = FLoRAConfig(ranks=ranks, alpha=alpha, scale=scale, dropout=dropout)
    return kind, configs, draw(st.integers(0, 2 ** 16))


def build(kind, configs, seed=None):
    """The same base layer every time; adapter values drawn from ``seed`` (None: as initialised)."""
    torch.manual_seed(0)
    model = nn.Sequential(LAYERS[kind][0]())
    for name, config in configs.items():
        inject_flora(model, config, adapter_name=name)
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in model[0].flora_adapters.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return model.eval()


@given(flora_setups())
def test_flora_adapter_file_round_trips_exactly(setup):
    kind, configs, seed = setup
    trained, fresh = build(kind, configs, seed), build(kind, configs)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "adapter.safetensors"
        save_flora_adapter(trained, path)
        assert load_flora_state_dict(fresh, path) == IncompatibleKeys([], [])
    saved, loaded = flora_state_dict(trained), flora_state_dict(fresh)
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[key], loaded[key]) for key in saved)
    x = LAYERS[kind][1]()
    for name in configs:
        set_active_adapter(trained, name)
        set_active_adapter(fresh, name)
        assert torch.equal(fresh(x), trained(x))


def invalid_regex(pattern):
    try:
        re.compile(pattern)
    except re.error:
        return True
    return False


not_int = st.one_of(st.floats(), st.booleans(), st.text(max_size=3), st.complex_numbers(), st.none())
not_finite_real = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]), st.booleans(), st.text(max_size=3),
                            st.complex_numbers(), st.lists(st.floats(), max_size=2))
not_str = st.one_of(st.integers(), st.floats(), st.none(), st.booleans())

# parameter name -> values that must be refused
INVALID = {
    "ranks": st.one_of(not_int, st.integers(max_value=0), st.just(()),
                       st.lists(st.integers(1, 4), max_size=3).flatmap(
                           lambda good: st.tuples(*map(st.just, good), not_int | st.integers(max_value=0)))),
    "scale": not_finite_real | st.none(),
    "alpha": not_finite_real,
    "dropout": st.one_of(not_finite_real, st.none(), st.floats(allow_nan=False).filter(lambda v: not 0 <= v < 1)),
    "target_modules": st.one_of(
        st.text(alphabet="()[]{}*+?|\\^$.ab", min_size=1, max_size=6).filter(invalid_regex),
        st.lists(not_str, min_size=1, max_size=3), st.integers(), st.floats()),
    "modules_to_save": st.one_of(st.text(max_size=5), st.lists(not_str, min_size=1, max_size=3), st.integers()),
    "target_types": st.one_of(st.sampled_from([nn.Linear, nn.ReLU, 5, "Linear"]),
                              st.lists(st.sampled_from([nn.ReLU, nn.Module, int, 5, "Linear"]), min_size=1,
                                       max_size=2).map(tuple)),
}


@given(st.sampled_from(sorted(INVALID)).flatmap(lambda name: st.tuples(st.just(name), INVALID[name])))
def test_invalid_flora_parameters_are_refused_naming_them(case):
    name, value = case
    with pytest.raises((ValueError, TypeError)) as caught:
        FLoRAConfig(**{name: value})
    assert name in str(caught.value)


SBL = make_kronecker_problem(((4, 5), (3, 4)), support_sizes=2, random_state=0)


@st.composite
def corrupted_sbl_data(draw):
    """Valid factors and y with one corruption; returns (X, y, the argument at fault)."""
    factors, y = [f.copy() for f in SBL.factors], SBL.y.copy()
    kind = draw(st.sampled_from(["non-finite", "complex-nan", "length", "ndim", "one-array"]))
    target = draw(st.sampled_from(["y", 0, 1])) if kind in ("non-finite", "complex-nan") else "y"
    if kind in ("non-finite", "complex-nan"):
        array = y if target == "y" else factors[target]
        if kind == "complex-nan":
            array = array.astype(complex)
        flat = array.reshape(-1)
        flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        if target == "y":
            y = array
        else:
            factors[target] = array
    elif kind == "length":
        y = np.resize(y, y.size + draw(st.integers(-y.size, 5).filter(lambda d: d != 0)))
    elif kind == "ndim":
        target = draw(st.sampled_from([0, 1]))
        factors[target] = factors[target].reshape(-1)
    else:
        target = "X"
        factors = draw(st.sampled_from([factors[0], np.stack([factors[1], factors[1]])]))
    if draw(st.booleans()):
        factors = [torch.as_tensor(f) for f in factors] if isinstance(factors, list) else torch.as_tensor(factors)
        y = torch.as_tensor(y)
    return factors, y, target if isinstance(target, str) else f"X[{target}]"


@given(corrupted_sbl_data())
def test_kronecker_sbl_input_checks_name_the_argument(case):
    X, y, name = case
    with pytest.raises((ValueError, TypeError)) as caught:
        KroneckerSBL(max_iter=2).fit(X, y)
    assert re.search(rf"(^|\W){re.escape(name)}\W", str(caught.value)), str(caught.value)


FUNBAT = make_functional_tucker(n_entries=40, n_modes=2, rank=1, random_state=0)


@st.composite
def corrupted_funbat_data(draw):
    """Valid coordinates and values with one corruption; returns (X, y, the argument at fault)."""
    X, y = FUNBAT.X.copy(), FUNBAT.y.copy()
    kind = draw(st.sampled_from(["non-finite", "complex", "length", "ndim"]))
    name = draw(st.sampled_from(["X", "y"])) if kind in ("non-finite", "complex") else "X"
    if kind in ("non-finite", "complex"):
        array = (X if name == "X" else y).astype(complex if kind == "complex" else float)
        flat = array.reshape(-1)
        index = draw(st.integers(0, flat.size - 1))
        flat[index] = draw(st.sampled_from([np.nan, np.inf, -np.inf])) if kind == "non-finite" else flat[index] + 1j
        X, y = (array, y) if name == "X" else (X, array)
    elif kind == "length":
        y = np.resize(y, y.size + draw(st.integers(-y.size + 1, 5).filter(lambda d: d != 0)))
    else:
        X = draw(st.sampled_from([X[:, 0], X[None], X.reshape(-1)]))
    container = draw(st.sampled_from([np.asarray, torch.as_tensor, lambda a: a.tolist()]))
    return container(X), container(y), name


@given(corrupted_funbat_data())
def test_funbat_input_checks_name_the_argument(case):
    X, y, name = case
    with pytest.raises((ValueError, TypeError)) as caught:
        FunBaT(rank=1, n_epochs=1, n_init=1, verbose=0).fit(X, y)
    assert re.search(rf"(^|\W){name}\W", str(caught.value)), str(caught.value)


NON_NUMBERS = st.sampled_from([float("nan"), "1", 1j, True, None])
NON_NUMBERS_BUT_NONE = NON_NUMBERS.filter(lambda value: value is not None)
INVALID_ESTIMATOR_PARAMETERS = {
    (KroneckerSBL, "method"): st.sampled_from(["lasso", "SVD", 1, None]),
    (KroneckerSBL, "noise_var"): st.floats(max_value=0.0) | st.just(float("inf")) | NON_NUMBERS_BUT_NONE,
    (KroneckerSBL, "max_iter"): st.integers(max_value=0) | st.floats(1, 10) | NON_NUMBERS,
    (KroneckerSBL, "tol"): st.floats(max_value=-1e-12) | NON_NUMBERS,
    (KroneckerSBL, "prune"): st.floats(min_value=1.0) | st.floats(max_value=-1e-12) | NON_NUMBERS_BUT_NONE,
    (KroneckerSBL, "block"): st.floats(max_value=-1e-12) | st.tuples(st.just(0.5), st.floats(max_value=-1e-12)),
    (FunBaT, "rank"): st.integers(max_value=0) | st.tuples(st.just(2), st.integers(max_value=0)) | NON_NUMBERS,
    (FunBaT, "kernel"): st.sampled_from(["rbf", ("matern32", "rbf"), 3]),
    (FunBaT, "lengthscale"): st.floats(max_value=0.0) | st.tuples(st.just(0.1), st.floats(max_value=0.0)),
    (FunBaT, "damping"): st.floats(max_value=0.0) | st.floats(min_value=1.0 + 1e-9) | NON_NUMBERS,
    (FunBaT, "n_epochs"): st.integers(max_value=0) | st.floats(1, 10) | NON_NUMBERS,
    (FunBaT, "core_prior"): st.floats(max_value=0.0) | NON_NUMBERS,
}
ESTIMATOR_DATA = {KroneckerSBL: (SBL.factors, SBL.y), FunBaT: (FUNBAT.X, FUNBAT.y)}


@given(st.sampled_from(sorted(INVALID_ESTIMATOR_PARAMETERS, key=str)).flatmap(
    lambda key: st.tuples(st.just(key), INVALID_ESTIMATOR_PARAMETERS[key])))
def test_invalid_estimator_parameters_are_refused_at_fit_naming_them(case):
    (estimator, name), value = case
    X, y = ESTIMATOR_DATA[estimator]
    with pytest.raises(ValueError) as caught:
        estimator(**{name: value, "verbose": 0}).fit(X, y)
    assert name in str(caught.value)
