"""FLoRAModel with peft's workflow: save_pretrained / from_pretrained across processes, adapters switched,
disabled, added and deleted, per-adapter copies of the modules to save, subclasses of supported layers
(an attention's out_proj, read by its parent), transformers' Conv1D, and errors for what cannot be wrapped."""

import copy
import json
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from tensorkit import FLoRAConfig, FLoRAModel, flora_state_dict, get_flora_model, inject_flora, load_flora_state_dict
from tensorkit.flora import FLoRALinear, FLoRATransformersConv1D, ModulesToSaveWrapper

# the pretrained model a test starts from: rebuilt identically in another process from its seed
BASE_SOURCE = """
import torch, torch.nn as nn
def make_base(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
"""
namespace: dict = {}
exec(BASE_SOURCE, namespace)
make_base = namespace["make_base"]
CONFIG = FLoRAConfig(ranks=3, target_modules=["0", "2"], modules_to_save=["4"])


def train(model, steps=30, seed=0):
    """A few optimiser steps on a random regression, so that adapters and saved modules move."""
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.randn(64, 6, generator=generator), torch.randn(64, 3, generator=generator)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    return model


def test_an_adapter_trained_and_saved_in_another_process_loads_into_a_fresh_base_with_the_same_outputs(tmp_path):
    script = BASE_SOURCE + textwrap.dedent(f"""
        import sys
        from safetensors.torch import save_file
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parents[2])!r})
        from tests.tensorkit.test_flora_model import train
        from tensorkit import FLoRAConfig, get_flora_model
        model = train(get_flora_model(make_base(7), FLoRAConfig(ranks=3, target_modules=["0", "2"],
                                                              modules_to_save=["4"])))
        model.save_pretrained({str(tmp_path / "adapter")!r})
        x = torch.linspace(-2, 2, 60).reshape(10, 6)
        save_file({{"x": x, "y": model(x).detach()}}, {str(tmp_path / "outputs.safetensors")!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    saved = load_file(tmp_path / "outputs.safetensors")
    loaded = FLoRAModel.from_pretrained(make_base(7), tmp_path / "adapter")
    torch.testing.assert_close(loaded(saved["x"]), saved["y"], rtol=0, atol=0)
    assert not torch.equal(make_base(7)(saved["x"]), saved["y"])   # the adapter did change the model
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_save_pretrained_writes_config_and_adapter_tensors_only(tmp_path):
    model = train(get_flora_model(make_base(0), CONFIG))
    model.add_adapter("other", FLoRAConfig(ranks=2, target_modules=["2"]))
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["ranks"] == 3 and config["target_modules"] == ["0", "2"] and config["modules_to_save"] == ["4"]
    assert config["format"] == "tensorgraph_learn.flora/1" and config["base_model_class"] == "Sequential"
    tensors = load_file(tmp_path / "adapter_model.safetensors")
    assert set(tensors) == {f"{layer}.flora_adapters.{part}" for layer in (0, 2)
                            for part in ("core", "factors.0", "factors.1")} | {"4.modules_to_save.weight",
                                                                                "4.modules_to_save.bias"}
    torch.testing.assert_close(tensors["4.modules_to_save.weight"], model.base_model[4].modules_to_save["default"].weight)
    other = load_file(tmp_path / "other" / "adapter_model.safetensors")
    assert set(other) == {"2.flora_adapters.core", "2.flora_adapters.factors.0", "2.flora_adapters.factors.1"}
    only = tmp_path / "only"
    model.save_pretrained(only, selected_adapters=["other"])
    assert not (only / "adapter_config.json").exists() and (only / "other" / "adapter_config.json").exists()


def test_load_adapter_adds_a_saved_adapter_under_another_name(tmp_path):
    trained = train(get_flora_model(make_base(0), CONFIG), seed=1)
    trained.save_pretrained(tmp_path)
    model = get_flora_model(make_base(0), CONFIG)
    model.load_adapter(tmp_path, "loaded")
    x = torch.randn(5, 6)
    assert model.active_adapter == "default" and not torch.equal(model(x), trained(x))
    model.set_adapter("loaded")
    torch.testing.assert_close(model(x), trained(x), rtol=0, atol=0)


def test_disable_adapter_gives_the_pretrained_outputs_back_and_restores_the_state():
    model = train(get_flora_model(make_base(0), CONFIG))
    x = torch.randn(8, 6)
    adapted, pretrained = model(x), make_base(0)(x)
    assert not torch.allclose(adapted, pretrained)
    model.merge_adapter()
    with model.disable_adapter():
        torch.testing.assert_close(model(x), pretrained, rtol=0, atol=0)   # saved module: the original runs
        assert model.active_adapter is None
    assert model.active_adapter == "default" and all(layer.merged for layer in (model.base_model[0], model.base_model[2]))
    torch.testing.assert_close(model(x), adapted)
    model.unmerge_adapter()
    torch.testing.assert_close(model(x), adapted, rtol=0, atol=0)


def test_modules_to_save_are_copies_per_adapter_and_the_original_stays_frozen():
    model = get_flora_model(make_base(0), CONFIG)
    original = model.base_model[4].original_module.weight.detach().clone()
    train(model)
    head = model.base_model[4]
    assert isinstance(head, ModulesToSaveWrapper) and torch.equal(head.original_module.weight, original)
    assert not torch.equal(head.modules_to_save["default"].weight, original)
    model.add_adapter("second", CONFIG)
    assert torch.equal(head.modules_to_save["second"].weight, original)   # a fresh copy of the original
    model.set_adapter("second")
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".second." in name for name in trainable)


def test_add_set_and_delete_adapters():
    model = get_flora_model(make_base(0), CONFIG)
    model.add_adapter("b", FLoRAConfig(ranks=2, target_modules=["0"]))
    assert model.active_adapter == "default"
    with torch.no_grad():
        model.base_model[0].flora_adapters["b"].core.fill_(1.0)
    x = torch.randn(4, 6)
    before = model(x)
    model.set_adapter("b")
    assert not torch.equal(model(x), before)
    model.delete_adapter("b")
    assert model.active_adapter == "default" and "b" not in model.base_model[0].flora_adapters
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="only adapter"):
        model.delete_adapter("default")
    with pytest.raises(ValueError, match="unknown adapter 'nope'"):
        model.set_adapter("nope")
    with pytest.raises(ValueError, match="exists"):
        model.add_adapter("default", CONFIG)


def test_merge_and_unload_and_unload():
    model = train(get_flora_model(make_base(0), CONFIG))
    x = torch.randn(6, 6)
    adapted = model(x)
    merged = model.merge_and_unload()
    assert [type(m) for m in merged] == [type(m) for m in make_base(0)]
    torch.testing.assert_close(merged(x), adapted, rtol=1e-5, atol=1e-6)
    fresh = train(get_flora_model(make_base(0), CONFIG))
    plain = fresh.unload()
    assert [type(m) for m in plain] == [type(m) for m in make_base(0)]
    torch.testing.assert_close(plain(x), make_base(0)(x), rtol=0, atol=0)


def test_loading_checks_the_base_model_and_says_what_is_wrong(tmp_path):
    get_flora_model(make_base(0), CONFIG).save_pretrained(tmp_path)
    wider = nn.Sequential(nn.Linear(6, 20), nn.ReLU(), nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))
    with pytest.raises(ValueError, match=r"0\.flora_adapters\.default\.factors\.0: saved shape \(16, 3\) differs "
                                         r"from the model's \(20, 3\)") as caught:
        FLoRAModel.from_pretrained(wider, tmp_path)
    assert str(tmp_path) in str(caught.value)
    with pytest.raises(ValueError, match="no module of Sequential matched"):
        FLoRAModel.from_pretrained(nn.Sequential(nn.ReLU()), tmp_path)
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        FLoRAModel.from_pretrained(make_base(0), tmp_path / "absent")
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    with pytest.raises(ValueError, match="not a FLoRA adapter configuration"):
        FLoRAModel.from_pretrained(make_base(0), tmp_path)


def test_ranks_from_a_callable_are_saved_as_the_ranks_of_each_layer(tmp_path):
    def ranks(shape):
        return [min(4 if mode == 0 else 2, size) for mode, size in enumerate(shape)]

    model = train(get_flora_model(make_base(0), FLoRAConfig(ranks=ranks, target_modules=["0", "2"])))
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["ranks"] == {"0": [4, 2], "2": [4, 2]}
    loaded = FLoRAModel.from_pretrained(make_base(0), tmp_path)
    x = torch.randn(3, 6)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="callable cannot be saved"):
        FLoRAConfig(ranks=ranks).to_dict()


def test_ranks_per_module_by_name_or_suffix():
    model = inject_flora(nn.Sequential(nn.Linear(6, 5), nn.Sequential(nn.Linear(5, 4))),
                         FLoRAConfig(ranks={"0": 2, "1.0": [3, 1]}))
    assert model[0].flora_adapters["default"].ranks == (2, 2) and model[1][0].flora_adapters["default"].ranks == (3, 1)
    suffix = inject_flora(nn.Sequential(nn.Sequential(nn.Linear(5, 4))), FLoRAConfig(ranks={"0": 1}, target_modules=["0.0"]))
    assert suffix[0][0].flora_adapters["default"].ranks == (1, 1)
    with pytest.raises(ValueError, match="ranks gives no ranks for module '1'"):
        inject_flora(nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 4)), FLoRAConfig(ranks={"0": 2}))
    with pytest.raises(ValueError, match="ranks as a dict must map module names"):
        FLoRAConfig(ranks={1: 2})


def test_config_round_trips_through_json_including_types():
    config = FLoRAConfig(ranks=[2, 3], alpha=4.0, dropout=0.1, target_modules=r"layers\.\d+",
                         target_types=(nn.Linear,), modules_to_save=("head",))
    values = json.loads(json.dumps(config.to_dict()))
    assert FLoRAConfig.from_dict(values) == config
    with pytest.raises(ValueError, match="unknown keys"):
        FLoRAConfig.from_dict({**values, "r": 8})


def test_pickles_and_deep_copies():
    model = train(get_flora_model(make_base(0), CONFIG))
    x = torch.randn(3, 6)
    for other in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        torch.testing.assert_close(other(x), model(x), rtol=0, atol=0)
        assert other.flora_config == model.flora_config


def test_files_saved_before_per_adapter_copies_still_load(tmp_path):
    model = train(inject_flora(make_base(0), CONFIG))
    state = {key.replace("4.modules_to_save.default.", "4."): value.contiguous()
             for key, value in flora_state_dict(model).items()}
    save_file(state, str(tmp_path / "old.safetensors"))
    fresh = inject_flora(make_base(0), CONFIG)
    load_flora_state_dict(fresh, tmp_path / "old.safetensors")
    x = torch.randn(4, 6)
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


# subclasses of supported layers, and layers whose parent reads their weight --------------------------------

def encoder_layer(seed=0):
    torch.manual_seed(seed)
    return nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)


def test_attention_out_proj_is_wrapped_and_its_adapter_acts_through_the_parent():
    layer = encoder_layer()
    model = get_flora_model(layer, FLoRAConfig(ranks=2, target_modules=["out_proj"]))
    assert isinstance(model.base_model.self_attn.out_proj, FLoRALinear)
    x = torch.randn(3, 5, 8)
    base = encoder_layer()(x)
    torch.testing.assert_close(model(x), base, rtol=0, atol=1e-6)   # zero core: unchanged (PyTorch picks another
    # attention kernel when the base weights are frozen, hence not bit for bit)
    with torch.no_grad():
        model.base_model.self_attn.out_proj.flora_adapters["default"].core.normal_()
    adapted = model(x)
    assert not torch.allclose(adapted, base)
    adapted.sum().backward()
    assert model.base_model.self_attn.out_proj.flora_adapters["default"].core.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        fast = model(x)            # inference may take PyTorch's fused attention path
        model.merge_adapter()
        torch.testing.assert_close(model(x), fast, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast, adapted.detach(), rtol=1e-5, atol=1e-5)


def test_targeted_modules_that_cannot_be_wrapped_are_named():
    with pytest.raises(ValueError, match=r"self_attn \(MultiheadAttention, parameters \['in_proj_weight', "
                                         r"'in_proj_bias'\] held directly\)"):
        inject_flora(encoder_layer(), FLoRAConfig(target_modules=["self_attn", "linear1"]))
    with pytest.raises(ValueError, match=r"norm1 \(LayerNorm"):
        inject_flora(encoder_layer(), FLoRAConfig(target_modules=r"linear1|norm1"))
    with pytest.raises(ValueError, match=r"modules_to_save names no module of Sequential: \['classifier'\]"):
        inject_flora(make_base(0), FLoRAConfig(target_modules=["0"], modules_to_save=["classifier"]))
    # parameter-free modules matched are ignored, and a container matched is fine when layers inside are wrapped
    wrapped = inject_flora(encoder_layer(), FLoRAConfig(ranks=2, target_modules=r"self_attn\.out_proj|linear\d|dropout\d?"))
    assert isinstance(wrapped.linear1, FLoRALinear) and isinstance(wrapped.self_attn.out_proj, FLoRALinear)
    nested = inject_flora(nn.Sequential(nn.Sequential(nn.Linear(3, 3)), nn.Sequential(nn.ReLU())),
                          FLoRAConfig(ranks=2, target_modules=["0"]))
    assert isinstance(nested[0][0], FLoRALinear)
    with pytest.raises(ValueError, match=r"block \(Sequential, no supported layer inside\)"):
        inject_flora(nn.ModuleDict({"block": nn.Sequential(nn.LayerNorm(3)), "head": nn.Linear(3, 3)}),
                     FLoRAConfig(target_modules=["block", "head"]))


def test_transformers_conv1d_is_wrapped_on_its_in_by_out_weight():
    conv1d_class = pytest.importorskip("transformers.pytorch_utils").Conv1D
    torch.manual_seed(0)
    base = nn.Sequential(conv1d_class(12, 6))          # nf=12 outputs, nx=6 inputs: weight 6 x 12
    model = inject_flora(copy.deepcopy(base), FLoRAConfig(ranks=2))
    layer = model[0]
    assert isinstance(layer, FLoRATransformersConv1D) and layer.flora_adapters["default"].shape == (6, 12)
    x = torch.randn(2, 4, 6)
    torch.testing.assert_close(model(x), base(x), rtol=0, atol=0)
    with torch.no_grad():
        layer.flora_adapters["default"].core.normal_()
    expected = x @ (base[0].weight + layer.delta_weight()) + base[0].bias
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)
    layer.merge()
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)
    layer.unmerge()
    assert torch.equal(layer.base_layer.weight, base[0].weight)
