import numpy as np
import pytest
import torch

from tensorkit.kron import KroneckerGram, kron_matvec, kron_sbl_posterior, kron_vector


def random_factors(shapes, complex_valued, rng):
    def draw(*shape):
        out = rng.standard_normal(shape)
        return out + 1j * rng.standard_normal(shape) if complex_valued else out
    return [draw(*shape) for shape in shapes], draw


def dense_kron(arrays):
    result = arrays[0]
    for array in arrays[1:]:
        result = np.kron(result, array)
    return result


SHAPES = {1: [(6, 9)], 2: [(3, 5), (4, 2)], 3: [(3, 4), (2, 3), (4, 2)]}


@pytest.mark.parametrize("n_factors", [1, 2, 3])
@pytest.mark.parametrize("complex_valued", [False, True])
def test_matvec_and_adjoint_match_np_kron(n_factors, complex_valued, device):
    rng = np.random.default_rng(n_factors)
    factors, draw = random_factors(SHAPES[n_factors], complex_valued, rng)
    dense = dense_kron(factors)
    x, y = draw(dense.shape[1]), draw(dense.shape[0])
    tensors = [torch.tensor(f, device=device) for f in factors]
    np.testing.assert_allclose(kron_matvec(tensors, torch.tensor(x, device=device)).cpu().numpy(), dense @ x, atol=1e-12)
    np.testing.assert_allclose(kron_matvec(tensors, torch.tensor(y, device=device), adjoint=True).cpu().numpy(),
                               dense.conj().T @ y, atol=1e-12)


def test_matvec_rejects_wrong_length():
    with pytest.raises(ValueError, match="length 6"):
        kron_matvec([np.ones((2, 2)), np.ones((2, 3))], np.ones(5))
    with pytest.raises(ValueError, match="at least one"):
        kron_matvec([], np.ones(1))


def test_kron_vector_matches_np_kron():
    parts = [torch.rand(3, dtype=torch.float64), torch.rand(2, dtype=torch.float64), torch.rand(4, dtype=torch.float64)]
    np.testing.assert_allclose(kron_vector(parts).numpy(), dense_kron([p.numpy() for p in parts]))


@pytest.mark.parametrize("n_factors", [1, 2, 3])
@pytest.mark.parametrize("complex_valued", [False, True])
def test_sbl_posterior_matches_dense_woodbury(n_factors, complex_valued, device):
    rng = np.random.default_rng(10 + n_factors)
    factors, draw = random_factors(SHAPES[n_factors], complex_valued, rng)
    gammas = [rng.random(shape[1]) + 0.05 for shape in SHAPES[n_factors]]
    Phi, gamma = dense_kron(factors), dense_kron(gammas)
    y = draw(Phi.shape[0])
    noise_var = 0.3
    C = noise_var * np.eye(Phi.shape[0]) + Phi @ np.diag(gamma) @ Phi.conj().T
    Sigma = np.diag(gamma) - np.diag(gamma) @ Phi.conj().T @ np.linalg.solve(C, Phi @ np.diag(gamma))
    mean = np.diag(gamma) @ Phi.conj().T @ np.linalg.solve(C, y)
    posterior = kron_sbl_posterior([torch.tensor(f, device=device) for f in factors],
                                   [torch.tensor(g, device=device) for g in gammas], noise_var,
                                   torch.tensor(y, device=device))
    np.testing.assert_allclose(posterior.mean.cpu().numpy(), mean, atol=1e-10)
    np.testing.assert_allclose(posterior.variance.cpu().numpy(), np.real(np.diag(Sigma)), atol=1e-10)
    expected_objective = np.linalg.slogdet(C)[1] + np.real(y.conj() @ np.linalg.solve(C, y))
    assert posterior.objective == pytest.approx(expected_objective, rel=1e-10)


def test_gram_handles_more_rows_than_columns():
    """B_k = A_k Γ_k A_k^H is rank-deficient when m_k > n_k; the shift keeps C invertible."""
    rng = np.random.default_rng(0)
    factors = [torch.tensor(rng.standard_normal((6, 2))), torch.tensor(rng.standard_normal((3, 5)))]
    gammas = [torch.rand(2, dtype=torch.float64), torch.rand(5, dtype=torch.float64)]
    gram = KroneckerGram(factors, gammas, noise_var=1e-3)
    dense = np.kron(*(f.numpy() @ np.diag(g.numpy()) @ f.numpy().T for f, g in zip(factors, gammas))) + 1e-3 * np.eye(18)
    y = torch.tensor(rng.standard_normal(18))
    np.testing.assert_allclose(gram.solve(y).numpy(), np.linalg.solve(dense, y.numpy()), rtol=1e-8)
    assert gram.logdet() == pytest.approx(np.linalg.slogdet(dense)[1], rel=1e-10)
