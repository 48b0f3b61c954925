import copy
import math

import pytest
import tensorly as tl
import torch
import torch.nn as nn

from tensorkit import (
    FLoRAConfig,
    count_trainable_parameters,
    flora_state_dict,
    inject_flora,
    load_flora_state_dict,
    merge_and_unload,
    set_active_adapter,
)
from tensorkit.flora import FLoRAConv2d, FLoRAEmbedding, FLoRALinear, TuckerAdapter

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
    assert trainable == {"features.2.flora_adapters.default.core", "head.weight", "head.bias"} | {
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
    assert isinstance(model.head, nn.Linear) and isinstance(model.features[0], FLoRAConv2d)
    keys = set(flora_state_dict(model))
    assert {"head.weight", "head.bias"} <= keys
    assert all(".flora_adapters." in k or k.startswith("head.") for k in keys)
    short = inject_flora(SmallNet(), FLoRAConfig(ranks=2, target_modules=["head"], modules_to_save=["2"]))
    assert not any(k.startswith("features.0.") for k in flora_state_dict(short))


def test_unmerge_buffer_follows_to_and_is_not_saved():
    _, model = wrapped(lambda: nn.Linear(3, 2))
    model[0].merge()
    assert "0._unmerged_weight" not in model.state_dict()
    model = model.to(torch.float64)
    model[0].unmerge()
    assert model[0].base_layer.weight.dtype == torch.float64
