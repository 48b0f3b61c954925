"""tensorkit.base: the constraint helpers, the fit set-up, the random source and the pickling rule."""

import pickle

import numpy as np
import pytest
import torch

from tensorkit import backend
from tensorkit.base import InvalidParameterError, StrOptions, TorchEstimator, integers, reals, to_cpu


class Toy(TorchEstimator):
    _parameter_constraints = {**TorchEstimator._parameter_constraints,
                              "n_draws": [integers(1)], "scale": [reals(0, None, closed="neither")],
                              "kind": [StrOptions({"a", "b"})]}

    def __init__(self, n_draws=3, *, scale=1.0, kind="a", random_state=None, device="auto", dtype="float64",
                 verbose=1):
        self.n_draws, self.scale, self.kind = n_draws, scale, kind
        self.random_state, self.device, self.dtype, self.verbose = random_state, device, dtype, verbose

    def _check_param_combinations(self):
        if self.kind == "b" and self.n_draws < 2:
            raise ValueError("kind='b' needs n_draws >= 2")

    def fit(self, X=None, y=None):
        setup = self._fit_setup()
        self.setup_ = setup
        first = torch.rand(self.n_draws, generator=setup.random.spawn_generator(), dtype=setup.dtype)
        second = torch.rand(self.n_draws, generator=setup.random.spawn_generator(), dtype=setup.dtype)
        self.draws_ = torch.stack([first, second]).to(setup.device) * self.scale
        self.module_ = torch.nn.Linear(2, 2).to(setup.device)
        self.history_ = [{"iteration": i} for i in self._progress(range(3))]
        return self


@pytest.mark.parametrize("value", [0, -1, True, 2.0, "3", None])
def test_integer_constraints_refuse_bools_floats_and_out_of_range(value):
    with pytest.raises(InvalidParameterError, match="'n_draws' parameter of Toy"):
        Toy(n_draws=value).fit()


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf"), True, "1"])
def test_real_constraints_refuse_nan_infinity_bools_and_bounds(value):
    with pytest.raises(InvalidParameterError, match="'scale' parameter of Toy"):
        Toy(scale=value).fit()


def test_combination_rules_run_after_the_constraints():
    with pytest.raises(ValueError, match="kind='b' needs n_draws >= 2"):
        Toy(n_draws=1, kind="b").fit()
    with pytest.raises(InvalidParameterError, match="'kind' parameter"):
        Toy(kind="c").fit()


def test_setup_resolves_device_dtype_and_one_random_source():
    fitted = Toy(random_state=5, device="cpu", dtype="float32").fit()
    assert fitted.setup_.device == torch.device("cpu") and fitted.setup_.dtype == torch.float32
    assert fitted.setup_.random.seed == 5


def test_spawned_streams_repeat_per_seed_and_differ_from_each_other():
    a, b = Toy(random_state=0).fit(), Toy(random_state=0).fit()
    assert torch.equal(a.draws_, b.draws_)
    assert not torch.equal(a.draws_[0], a.draws_[1])
    assert not torch.equal(a.draws_, Toy(random_state=1).fit().draws_)


def test_spawn_seed_draws_in_order_from_the_numpy_stream():
    source = backend.check_random_state(3)
    expected = np.random.RandomState(3).randint(2**31 - 1, size=2)
    assert [source.spawn_seed(), source.spawn_seed()] == list(expected)


def test_pickles_hold_cpu_state_and_predict_the_same():
    fitted = Toy(random_state=0, device="cpu").fit()
    restored = pickle.loads(pickle.dumps(fitted))
    assert torch.equal(restored.draws_, fitted.draws_)
    assert restored.module_.weight.device.type == "cpu"


def test_to_cpu_leaves_cpu_values_alone_and_walks_containers():
    tensor, module = torch.ones(2), torch.nn.Linear(1, 1)
    assert to_cpu(tensor) is tensor and to_cpu(module) is module
    moved = to_cpu({"a": [tensor, (module, 3)], "b": "text"})
    assert moved["a"][0] is tensor and moved["a"][1][0] is module and moved["b"] == "text"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_cpu_moves_cuda_state_without_touching_the_original():
    module = torch.nn.Linear(2, 2).cuda()
    state = to_cpu({"m": module, "t": [torch.ones(2, device="cuda")]})
    assert state["m"].weight.device.type == "cpu" and module.weight.device.type == "cuda"
    assert state["t"][0].device.type == "cpu"


def test_progress_is_silent_at_verbose_zero_and_delayed_at_one(capsys):
    Toy(verbose=0).fit()
    Toy(verbose=1).fit()
    assert capsys.readouterr().err == ""
    Toy(verbose=2).fit()
    assert "Toy" in capsys.readouterr().err


def test_a_numpy_generator_is_a_valid_random_state():
    first = Toy(random_state=np.random.default_rng(0)).fit().draws_
    assert torch.equal(first, Toy(random_state=np.random.default_rng(0)).fit().draws_)
