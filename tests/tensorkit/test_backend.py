import ast
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import tensorly as tl
import torch

from tensorkit import backend

ROOT = Path(__file__).resolve().parents[2]


def test_resolve_device_auto_follows_environment(monkeypatch):
    monkeypatch.setenv(backend.DEVICE_ENV_VAR, "cpu")
    assert backend.resolve_device("auto") == torch.device("cpu")
    monkeypatch.delenv(backend.DEVICE_ENV_VAR)
    expected = "cuda" if backend.cuda_available() else "cpu"
    assert backend.resolve_device("auto").type == expected
    assert backend.resolve_device(None).type == expected


def test_resolve_device_explicit_and_errors(monkeypatch):
    assert backend.resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert backend.resolve_device(" cpu ") == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        backend.resolve_device("gpu0")
    with pytest.raises(TypeError):
        backend.resolve_device(3)
    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA"):
        backend.resolve_device("cuda:1")
    monkeypatch.setenv(backend.DEVICE_ENV_VAR, "cuda")
    with pytest.raises(ValueError, match=backend.DEVICE_ENV_VAR):
        backend.resolve_device("auto")


def test_only_the_backend_asks_torch_about_cuda():
    offenders = []
    for package in ("tensorkit", "graphkit", "recsys"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "backend.py" and path.parent.name == "tensorkit":
                continue
            if "cuda.is_available" in path.read_text():
                offenders.append(str(path))
    assert offenders == []


def test_library_code_changes_no_global_state():
    forbidden = ("set_backend", "set_default_dtype", "set_default_device", "set_default_tensor_type", "manual_seed_all")
    offenders = []
    for package in ("tensorkit", "graphkit", "recsys"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in forbidden:
                    offenders.append(f"{path}:{node.lineno} {node.attr}")
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr == "manual_seed" and isinstance(node.func.value, ast.Name) \
                        and node.func.value.id == "torch":
                    offenders.append(f"{path}:{node.lineno} torch.manual_seed")
    assert offenders == []


@pytest.mark.parametrize("spec, expected", [
    (None, torch.float32), ("float64", torch.float64), ("double", torch.float64), (np.float32, torch.float32),
    (np.dtype("float64"), torch.float64), (torch.float16, torch.float16), ("complex64", torch.complex64),
])
def test_resolve_dtype(spec, expected):
    assert backend.resolve_dtype(spec) == expected


@pytest.mark.parametrize("spec", ["int32", np.int64, torch.int64, "banana", object])
def test_resolve_dtype_rejects_non_floating(spec):
    with pytest.raises(TypeError, match="dtype"):
        backend.resolve_dtype(spec)


def test_check_random_state_reproducible_and_tied_to_numpy():
    a, b = backend.check_random_state(11), backend.check_random_state(11)
    assert a.seed == b.seed == 11
    assert torch.equal(torch.rand(5, generator=a.torch), torch.rand(5, generator=b.torch))
    np.testing.assert_array_equal(a.numpy.rand(3), np.random.RandomState(11).rand(3))
    rs = np.random.RandomState(3)
    first = backend.check_random_state(rs)
    assert first.numpy is rs
    second = backend.check_random_state(np.random.RandomState(3))
    assert first.seed == second.seed
    from_generator = backend.check_random_state(np.random.default_rng(0))
    assert isinstance(from_generator.numpy, np.random.RandomState)
    with pytest.raises(ValueError):
        backend.check_random_state(-1)
    with pytest.raises(TypeError):
        backend.check_random_state("seed")


def test_random_source_generator_on_device(device):
    source = backend.check_random_state(0, device=device)
    assert source.torch.device.type == torch.device(device).type


def test_as_tensor_kinds_and_dtypes(device):
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = backend.as_tensor(array, device=device)
    assert t.dtype == torch.float64 and t.device.type == device
    assert backend.as_tensor(np.arange(3)).dtype == torch.float32
    sparse = sp.csr_matrix(array)
    np.testing.assert_array_equal(backend.as_tensor(sparse, dtype="float32").numpy(), array)
    torch_input = torch.ones(2, dtype=torch.float64)
    assert backend.as_tensor(torch_input).dtype == torch.float64
    assert backend.as_tensor(torch_input, dtype="float32").dtype == torch.float32
    with pytest.raises(TypeError):
        backend.as_tensor(np.array(["a", None], dtype=object))


@pytest.mark.parametrize("layout", [torch.sparse_csr, torch.sparse_coo])
def test_as_sparse_tensor_matches_dense(layout, device):
    matrix = sp.random(20, 15, density=0.2, format="csc", random_state=0)
    t = backend.as_sparse_tensor(matrix, device=device, layout=layout)
    assert t.layout == layout and t.device.type == device and t.dtype == torch.float32
    np.testing.assert_allclose(t.to_dense().cpu().numpy(), matrix.toarray(), rtol=1e-6)
    dense = torch.randn(15, 4, dtype=torch.float32, device=device)
    np.testing.assert_allclose(torch.sparse.mm(t, dense).cpu().numpy(), matrix.toarray() @ dense.cpu().numpy(),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError):
        backend.as_sparse_tensor(np.eye(3))


@pytest.mark.parametrize("source", ["scipy", "torch"])
def test_as_sparse_tensor_int32_indices_multiply_like_int64(source, device):
    matrix = sp.random(30, 25, density=0.2, format="csr", random_state=1)
    given = matrix if source == "scipy" else torch.from_numpy(matrix.toarray())
    narrow = backend.as_sparse_tensor(given, device=device, dtype="float64", index_dtype=torch.int32)
    wide = backend.as_sparse_tensor(given, device=device, dtype="float64")
    assert narrow.crow_indices().dtype == narrow.col_indices().dtype == torch.int32
    assert wide.col_indices().dtype == torch.int64
    dense = torch.randn(25, 3, dtype=torch.float64, device=device)
    out = torch.full((30, 3), float("nan"), dtype=torch.float64, device=device)
    torch.addmm(out, narrow, dense, beta=0, out=out)     # beta=0 ignores what out held, NaN included
    np.testing.assert_allclose(out.cpu().numpy(), matrix.toarray() @ dense.cpu().numpy(), rtol=1e-12)
    np.testing.assert_allclose((wide @ dense).cpu().numpy(), out.cpu().numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="index_dtype"):
        backend.as_sparse_tensor(matrix, index_dtype=torch.int16)


def test_outputs_in_the_callers_kind():
    result = torch.arange(3.0)
    assert isinstance(backend.to_output(result, like=np.zeros(1)), np.ndarray)
    assert isinstance(backend.to_output(result, like=None), np.ndarray)
    back = backend.to_output(np.arange(3.0), like=torch.zeros(1))
    assert isinstance(back, torch.Tensor) and torch.equal(back, torch.arange(3.0, dtype=torch.float64))
    np.testing.assert_array_equal(backend.to_numpy(sp.eye(2)), np.eye(2))


def test_tensorly_context_leaves_global_backend_alone():
    before = tl.get_backend()
    with backend.tensorly_backend() as tensorly:
        assert tensorly.get_backend() == "pytorch"
        product = tensorly.tenalg.khatri_rao([tensorly.tensor(np.ones((2, 2))), tensorly.tensor(np.ones((3, 2)))])
        assert isinstance(product, torch.Tensor) and product.shape == (6, 2)
    assert tl.get_backend() == before


def test_random_source_pickles():
    source = backend.check_random_state(4)
    restored = pickle.loads(pickle.dumps(source.numpy))
    np.testing.assert_array_equal(restored.rand(2), source.numpy.rand(2))


def test_torch_seeded_is_reproducible_and_leaves_the_global_generator_alone():
    import torch

    torch.random.manual_seed(123)   # the test (not the library) sets the caller's stream
    expected_next = torch.rand(3)
    torch.random.manual_seed(123)
    with backend.torch_seeded(7):
        first = torch.nn.Linear(4, 3).weight.detach().clone()
    with backend.torch_seeded(7):
        second = torch.nn.Linear(4, 3).weight.detach().clone()
    with backend.torch_seeded(8):
        other = torch.nn.Linear(4, 3).weight.detach().clone()
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert torch.equal(torch.rand(3), expected_next)   # the caller's stream continues where it was
