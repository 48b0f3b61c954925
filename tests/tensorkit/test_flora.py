import copy
import json
import math
from pathlib import Path

import pytest
import tensorly as tl
import torch
import torch.nn as nn
from safetensors import safe_open

from tensorkit import (
    FLoRAConfig,
    count_trainable_parameters,
    flora_state_dict,
    inject_flora,
    load_flora_state_dict,
    merge_and_unload,
    save_flora_adapter,
    set_active_adapter,
)
from tensorkit.flora import (
    FLoRAConv2d,
    FLoRAEmbedding,
    FLoRALinear,
    IncompatibleKeys,
    ModulesToSaveWrapper,
    TuckerAdapter,
)
from tensorkit.validation import NonFiniteResultError

# (id, module factory, input factory): every supported layer, and the convolution variants
CASES = [
    ("linear", lambda: nn.Linear(6, 5), lambda: torch.randn(4, 6)),
    ("conv1d", lambda: nn.Conv1d(4, 6, 3, padding=1), lambda: torch.randn(2, 4, 9)),
    ("conv2d", lambda: nn.Conv2d(4, 6, 3), lambda: torch.randn(2, 4, 7, 7)),
    ("conv2d-grouped", lambda: nn.Conv2d(4, 6, 3, groups=2), lambda: torch.randn(2, 4, 7, 7)),
    ("conv2d-depthwise", lambda: nn.Conv2d(4, 8, 3, groups=4), lambda: torch.randn(2, 4, 7, 7)),
    ("conv2d-strided", lambda: nn.Conv2d(3, 5, 3, stride=2, padding=1), lambda: torch.randn(2, 3, 9, 9)),
    ("conv2d-dilated", lambda: nn.Conv2d(3, 5, 3, dilation=2, padding=2, padding_mode="reflect"),
     lambda: torch.randn(2, 3, 9, 9)),
    ("conv3d", lambda: nn.Conv3d(2, 3, (2, 3, 3)), lambda: torch.randn(2, 2, 4, 5, 5)),
    ("embedding", lambda: nn.Embedding(10, 6, padding_idx=0), lambda: torch.tensor([[0, 3, 9], [1, 2, 2]])),
]
IDS = [case[0] for case in CASES]


def wrapped(factory, ranks=3, seed=0, randomize=True, **config):
    torch.manual_seed(seed)
    base = factory()
    model = inject_flora(nn.Sequential(copy.deepcopy(base)), FLoRAConfig(ranks=ranks, **config))
    if randomize:
        with torch.no_grad():
            model[0].flora_adapters["default"].core.normal_()
    return base, model


@pytest.mark.parametrize("name, factory, make_input", CASES, ids=IDS)
def test_zero_core_leaves_outputs_unchanged(name, factory, make_input):
    base, model = wrapped(factory, randomize=False)
    x = make_input()
    torch.testing.assert_close(model(x), base(x), rtol=0, atol=0)


@pytest.mark.parametrize("name, factory, make_input", CASES, ids=IDS)
def test_merge_unmerge(name, factory, make_input):
    base, model = wrapped(factory)
    layer, x = model[0], make_input()
    unmerged_output = model(x)
    assert not torch.allclose(unmerged_output, base(x))  # the adapter does something
    original = layer.base_layer.weight.detach().clone()
    layer.merge()
    torch.testing.assert_close(model(x), unmerged_output, rtol=0, atol=1e-5)
    merged_weight = layer.base_layer.weight.detach().clone()
    layer.merge()  # idempotent
    assert torch.equal(layer.base_layer.weight, merged_weight)
    layer.unmerge()
    assert torch.equal(layer.base_layer.weight, original)  # exactly
    torch.testing.assert_close(model(x), unmerged_output, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name, factory, make_input", CASES, ids=IDS)
def test_adapter_only_state_dict_round_trip(name, factory, make_input):
    _, trained = wrapped(factory, seed=0)
    state = flora_state_dict(trained)
    assert state and all(".flora_adapters.default." in key for key in state)
    _, fresh = wrapped(factory, seed=0, randomize=False)  # same pretrained weights, untrained adapter
    x = make_input()
    assert not torch.allclose(fresh(x), trained(x))
    load_flora_state_dict(fresh, state)
    torch.testing.assert_close(fresh(x), trained(x))


@pytest.mark.parametrize("name, factory, make_input", CASES, ids=IDS)
def test_parameter_count_is_the_tucker_formula(name, factory, make_input):
    _, model = wrapped(factory, ranks=2)
    shape = model[0].base_layer.weight.shape
    ranks = [min(2, d) for d in shape]
    assert count_trainable_parameters(model) == math.prod(ranks) + sum(d * r for d, r in zip(shape, ranks))


@pytest.mark.parametrize("name, factory, make_input", CASES, ids=IDS)
def test_gradients_reach_only_the_adapter(name, factory, make_input):
    _, model = wrapped(factory)
    model(make_input()).square().sum().backward()
    layer = model[0]
    adapter = layer.flora_adapters["default"]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in adapter.parameters())
    assert adapter.core.grad.abs().sum() > 0
    assert all(p.grad is None for p in layer.base_layer.parameters())


@pytest.mark.parametrize("name, factory, make_input", CASES, ids=IDS)
def test_rank_larger_than_its_mode_is_a_clear_error(name, factory, make_input):
    shape = factory().weight.shape
    too_big = tuple(d + 1 if i == 1 else 1 for i, d in enumerate(shape))
    with pytest.raises(ValueError, match="exceeds that mode's size"):
        inject_flora(nn.Sequential(factory()), FLoRAConfig(ranks=too_big))


def test_delta_weight_equals_tucker_to_tensor_and_einsum():
    adapter = TuckerAdapter((6, 4, 3, 3), (2, 3, 2, 1), scaling=0.5)
    with torch.no_grad():
        adapter.core.normal_()
    G, (U1, U2, U3, U4) = adapter.core.detach(), [f.detach() for f in adapter.factors]
    expected = 0.5 * torch.einsum("abcd,ia,jb,kc,ld->ijkl", G, U1, U2, U3, U4)
    torch.testing.assert_close(adapter.delta_weight().detach(), expected)
    with tl.backend_context("pytorch"):
        torch.testing.assert_close(adapter.delta_weight().detach(), 0.5 * tl.tucker_to_tensor((G, [U1, U2, U3, U4])))


def test_depthwise_input_mode_gets_rank_one_and_grouped_factor_has_in_over_groups_rows():
    _, model = wrapped(lambda: nn.Conv2d(4, 8, 3, groups=4), ranks=3)
    adapter = model[0].flora_adapters["default"]
    assert adapter.ranks == (3, 1, 3, 3)
    _, grouped = wrapped(lambda: nn.Conv2d(6, 4, 3, groups=2), ranks=2)
    assert grouped[0].flora_adapters["default"].factors[1].shape == (3, 2)


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=2), nn.ReLU())
        self.head = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def test_targets_by_suffix_regex_and_type_and_modules_to_save():
    torch.manual_seed(0)
    by_suffix = inject_flora(SmallNet(), FLoRAConfig(ranks=2, target_modules=["2"], modules_to_save=["head"]))
    assert isinstance(by_suffix.features[2], FLoRAConv2d) and not isinstance(by_suffix.features[0], FLoRAConv2d)
    trainable = {n for n, p in by_suffix.named_parameters() if p.requires_grad}
    assert trainable == {"features.2.flora_adapters.default.core", "head.modules_to_save.default.weight",
                         "head.modules_to_save.default.bias"} | {
        f"features.2.flora_adapters.default.factors.{i}" for i in range(4)}
    by_regex = inject_flora(SmallNet(), FLoRAConfig(ranks=2, target_modules=r"features\.\d+"))
    assert isinstance(by_regex.features[0], FLoRAConv2d) and isinstance(by_regex.features[2], FLoRAConv2d)
    assert not isinstance(by_regex.head, FLoRALinear)
    by_type = inject_flora(SmallNet(), FLoRAConfig(ranks=2, target_types=(nn.Linear,)))
    assert isinstance(by_type.head, FLoRALinear) and not isinstance(by_type.features[0], FLoRAConv2d)
    with pytest.raises(ValueError, match="no module"):
        inject_flora(SmallNet(), FLoRAConfig(target_modules=["nothing"]))


def test_two_named_adapters_switch_and_merge_and_unload_gives_the_plain_architecture():
    torch.manual_seed(0)
    model = SmallNet()
    reference = copy.deepcopy(model)
    x = torch.randn(5, 1, 8, 8)
    inject_flora(model, FLoRAConfig(ranks=2), adapter_name="a")
    inject_flora(model, FLoRAConfig(ranks=1), adapter_name="b")
    with torch.no_grad():
        for _, module in model.named_modules():
            if hasattr(module, "flora_adapters"):
                module.flora_adapters["a"].core.fill_(0.3)
                module.flora_adapters["b"].core.fill_(-0.2)
    set_active_adapter(model, "a")
    out_a = model(x)
    set_active_adapter(model, "b")
    out_b = model(x)
    set_active_adapter(model, None)
    torch.testing.assert_close(model(x), reference(x))
    assert not torch.allclose(out_a, out_b)
    assert set(k.split(".flora_adapters.")[1].split(".")[0] for k in flora_state_dict(model, "a")) == {"a"}
    set_active_adapter(model, "a")
    plain = merge_and_unload(model)
    assert [type(m) for m in plain.modules()] == [type(m) for m in reference.modules()]
    torch.testing.assert_close(plain(x), out_a, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="unknown adapter"):
        inject_flora(SmallNet(), FLoRAConfig()).features[0].set_adapter("zzz")


def test_training_moves_only_the_adapter_and_fits_a_target():
    torch.manual_seed(0)
    model = inject_flora(SmallNet(), FLoRAConfig(ranks=2, target_modules=r"features\.\d+", scale=1.0))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 3, (32,))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)


def test_dropout_branch_and_eval_agree_with_merged():
    torch.manual_seed(0)
    base = nn.Linear(8, 4)
    model = inject_flora(nn.Sequential(copy.deepcopy(base)), FLoRAConfig(ranks=2, dropout=0.5))
    with torch.no_grad():
        model[0].flora_adapters["default"].core.normal_()
    x = torch.randn(16, 8)
    model.train()
    assert not torch.allclose(model(x), model(x))  # dropout on the adapter branch
    model.eval()
    evaluated = model(x)
    model[0].merge()
    torch.testing.assert_close(model(x), evaluated, rtol=0, atol=1e-5)


def test_alpha_scaling_and_config_validation():
    assert FLoRAConfig(alpha=8).scaling((4, 2)) == 2.0
    assert FLoRAConfig(ranks=lambda shape: [1] * len(shape)).ranks_for((5, 3, 3)) == (1, 1, 1)
    with pytest.raises(ValueError, match="dropout"):
        FLoRAConfig(dropout=1.5)
    with pytest.raises(ValueError, match="2 ranks"):
        FLoRAConfig(ranks=(1, 2)).ranks_for((3, 3, 3))
    with pytest.raises(ValueError, match="target_types"):
        FLoRAConfig(target_types=(nn.ReLU,))


def test_embedding_padding_row_and_repr():
    _, model = wrapped(lambda: nn.Embedding(10, 6, padding_idx=0))
    layer = model[0]
    assert isinstance(layer, FLoRAEmbedding)
    assert "FLoRAEmbedding(adapters={'default': (3, 3)}" in repr(layer)
    out = model(torch.tensor([0, 1]))
    torch.testing.assert_close(out, layer.base_layer.weight[[0, 1]] + layer.delta_weight()[[0, 1]])


def test_layers_move_with_to():
    _, model = wrapped(lambda: nn.Linear(3, 2))
    model = model.to(torch.float64)
    assert model[0].flora_adapters["default"].core.dtype == torch.float64
    assert model(torch.randn(2, 3, dtype=torch.float64)).dtype == torch.float64


def test_modules_to_save_get_no_adapter_and_only_they_are_saved_beside_adapters():
    torch.manual_seed(0)
    model = inject_flora(SmallNet(), FLoRAConfig(ranks=2, modules_to_save=["head"]))
    assert isinstance(model.head, ModulesToSaveWrapper) and isinstance(model.features[0], FLoRAConv2d)
    assert isinstance(model.head.original_module, nn.Linear) and not isinstance(model.head.original_module, FLoRALinear)
    keys = set(flora_state_dict(model))
    assert {"head.modules_to_save.default.weight", "head.modules_to_save.default.bias"} <= keys
    assert all(".flora_adapters." in k or k.startswith("head.modules_to_save.default.") for k in keys)
    short = inject_flora(SmallNet(), FLoRAConfig(ranks=2, target_modules=["head"], modules_to_save=["2"]))
    assert not any(k.startswith("features.0.") for k in flora_state_dict(short))


def test_unmerge_buffer_follows_to_and_is_not_saved():
    _, model = wrapped(lambda: nn.Linear(3, 2))
    model[0].merge()
    assert "0._unmerged_weight" not in model.state_dict()
    model = model.to(torch.float64)
    model[0].unmerge()
    assert model[0].base_layer.weight.dtype == torch.float64


# ----------------------------------------------------------------------------- issue 32: parameters
@pytest.mark.parametrize("params, name", [
    (dict(ranks=2.5), "ranks"),
    (dict(ranks=0), "ranks"),
    (dict(ranks=-3), "ranks"),
    (dict(ranks=True), "ranks"),
    (dict(ranks=float("nan")), "ranks"),
    (dict(ranks=(2, 0.5)), "ranks"),
    (dict(ranks="4"), "ranks"),
    (dict(ranks=()), "ranks"),
    (dict(target_modules="("), "target_modules"),
    (dict(target_modules=[1]), "target_modules"),
    (dict(target_modules=5), "target_modules"),
    (dict(scale="1"), "scale"),
    (dict(scale=True), "scale"),
    (dict(alpha="8"), "alpha"),
    (dict(dropout="0.5"), "dropout"),
    (dict(modules_to_save="head"), "modules_to_save"),
    (dict(target_types=nn.Linear), "target_types"),
    (dict(target_types=(5,)), "target_types"),
])
def test_config_rejects_absurd_parameters_naming_them(params, name):
    with pytest.raises(ValueError, match=name):
        FLoRAConfig(**params)


def test_invalid_regex_error_names_the_parameter_and_the_regex_error():
    with pytest.raises(ValueError, match=r"target_modules='\(' is not a valid regular expression: missing \)"):
        FLoRAConfig(target_modules="(")


def test_ranks_callable_must_give_ints_not_truncated_floats():
    with pytest.raises(ValueError, match=r"ranks\(\.\.\.\) must be positive ints"):
        FLoRAConfig(ranks=lambda shape: [1.5] * len(shape)).ranks_for((3, 3))


# ----------------------------------------------------------------------------- issue 32: save / load
def two_layer_model(seed=0, randomize=True, **config):
    torch.manual_seed(seed)
    model = inject_flora(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)), FLoRAConfig(ranks=2, **config))
    if randomize:
        with torch.no_grad():
            for layer in (model[0], model[1]):
                layer.flora_adapters["default"].core.normal_()
    return model


LAYER_KEYS = {i: [f"{i}.flora_adapters.default.core", f"{i}.flora_adapters.default.factors.0",
                  f"{i}.flora_adapters.default.factors.1"] for i in (0, 1)}


def test_save_and_load_a_safetensors_file_round_trips_exactly(tmp_path):
    trained, fresh = two_layer_model(seed=0), two_layer_model(seed=0, randomize=False)
    path = tmp_path / "adapter.safetensors"
    save_flora_adapter(trained, path)
    with safe_open(path, framework="pt") as file:  # a plain safetensors file, the adapter tensors only
        assert sorted(file.keys()) == LAYER_KEYS[0] + LAYER_KEYS[1]
    assert load_flora_state_dict(fresh, path) == IncompatibleKeys([], [])
    x = torch.randn(5, 4)
    assert torch.equal(fresh(x), trained(x))
    assert all(torch.equal(value, flora_state_dict(trained)[key]) for key, value in flora_state_dict(fresh).items())


@pytest.mark.parametrize("drop", [LAYER_KEYS[0] + LAYER_KEYS[1], LAYER_KEYS[1]], ids=["empty", "missing-layer"])
def test_load_is_strict_about_missing_keys_and_loads_nothing(drop):
    trained, fresh = two_layer_model(seed=0), two_layer_model(seed=0, randomize=False)
    before = flora_state_dict(fresh)
    state = {key: value for key, value in flora_state_dict(trained).items() if key not in drop}
    with pytest.raises(ValueError, match="missing keys") as caught:
        load_flora_state_dict(fresh, state)
    assert all(key in str(caught.value) for key in drop)
    assert all(torch.equal(value, before[key]) for key, value in flora_state_dict(fresh).items())


def test_load_lists_unexpected_keys():
    trained, fresh = two_layer_model(seed=0), two_layer_model(seed=0)
    state = {**flora_state_dict(trained), "2.flora_adapters.default.core": torch.zeros(2, 2)}
    with pytest.raises(ValueError, match=r"unexpected keys: \['2\.flora_adapters\.default\.core'\]"):
        load_flora_state_dict(fresh, state)


def test_load_names_every_shape_and_dtype_mismatch_and_loads_nothing():
    trained, fresh = two_layer_model(seed=0), two_layer_model(seed=0, randomize=False)
    before = flora_state_dict(fresh)
    state = flora_state_dict(trained)
    state["0.flora_adapters.default.core"] = torch.zeros(3, 3)
    state["1.flora_adapters.default.core"] = state["1.flora_adapters.default.core"].double()
    with pytest.raises(ValueError) as caught:
        load_flora_state_dict(fresh, state)
    message = str(caught.value)
    assert "0.flora_adapters.default.core: saved shape (3, 3) differs from the model's (2, 2)" in message
    assert "1.flora_adapters.default.core: saved dtype torch.float64 differs from the model's torch.float32" in message
    assert all(torch.equal(value, before[key]) for key, value in flora_state_dict(fresh).items())


def test_strict_false_loads_the_common_keys_and_returns_the_others():
    trained, fresh = two_layer_model(seed=0), two_layer_model(seed=0, randomize=False)
    state = {key: value for key, value in flora_state_dict(trained).items() if key in LAYER_KEYS[0]}
    state["head.weight"] = torch.zeros(2, 3)
    result = load_flora_state_dict(fresh, state, strict=False)
    assert result == IncompatibleKeys(missing_keys=LAYER_KEYS[1], unexpected_keys=["head.weight"])
    loaded = flora_state_dict(fresh)
    assert all(torch.equal(loaded[key], state[key]) for key in LAYER_KEYS[0])
    with pytest.raises(ValueError, match="saved dtype"):  # shapes and dtypes are checked even so
        load_flora_state_dict(fresh, {LAYER_KEYS[0][0]: state[LAYER_KEYS[0][0]].double()}, strict=False)


def test_one_adapter_of_two_loads_with_adapter_name(tmp_path):
    def model_with_two():
        torch.manual_seed(0)
        model = inject_flora(nn.Sequential(nn.Linear(4, 3)), FLoRAConfig(ranks=2), adapter_name="a")
        return inject_flora(model, FLoRAConfig(ranks=1), adapter_name="b")

    trained, fresh = model_with_two(), model_with_two()
    with torch.no_grad():
        trained[0].flora_adapters["a"].core.fill_(0.7)
    save_flora_adapter(trained, tmp_path / "a.safetensors", adapter_name="a")
    with pytest.raises(ValueError, match="missing keys.*flora_adapters.b.core"):
        load_flora_state_dict(fresh, tmp_path / "a.safetensors")
    load_flora_state_dict(fresh, tmp_path / "a.safetensors", adapter_name="a")
    assert torch.equal(fresh[0].flora_adapters["a"].core, trained[0].flora_adapters["a"].core)
    with pytest.raises(ValueError, match="adapter_name='c' is not an adapter of the model; it has \\['a', 'b'\\]"):
        flora_state_dict(trained, "c")


@pytest.mark.parametrize("state", [{}, {"0.flora_adapters.default.core": torch.zeros(2, 2)}])
def test_loading_into_a_model_without_adapters_says_to_inject_first(state):
    with pytest.raises(ValueError, match="no FLoRA adapters are injected in this Sequential; call inject_flora"):
        load_flora_state_dict(nn.Sequential(nn.Linear(4, 3)), state)
    with pytest.raises(ValueError, match="no FLoRA adapters are injected"):
        flora_state_dict(nn.Sequential(nn.Linear(4, 3)))


def test_load_refuses_a_pickle_and_names_the_file(tmp_path):
    trained, fresh = two_layer_model(seed=0), two_layer_model(seed=0)
    path = tmp_path / "adapter.pt"
    torch.save(flora_state_dict(trained), path)
    with pytest.raises(ValueError, match=f"{path} is not a safetensors file"):
        load_flora_state_dict(fresh, path)
    with pytest.raises(TypeError, match="state must be the path of a safetensors file or a mapping"):
        load_flora_state_dict(fresh, 3)


def test_merge_refuses_a_non_finite_adapter_and_leaves_the_layer_unchanged():
    model = two_layer_model(seed=0)
    weight = model[0].base_layer.weight.detach().clone()
    with torch.no_grad():
        model[0].flora_adapters["default"].core[0, 0] = float("nan")
    with pytest.raises(NonFiniteResultError, match="merged with adapter 'default'.*likely cause: the adapter holds"):
        model[0].merge()
    assert not model[0].merged and torch.equal(model[0].base_layer.weight, weight)


def test_flora_tutorial_loads_adapters_without_unpickling():
    notebook = json.loads((Path(__file__).parents[2] / "tutorials" / "tensorkit_flora.ipynb").read_text())
    code = "".join(line for cell in notebook["cells"] if cell["cell_type"] == "code" for line in cell["source"])
    assert "torch.load(" not in code and "save_flora_adapter(" in code
