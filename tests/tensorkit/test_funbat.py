import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tensorkit import FunBaT, make_functional_tucker
from tensorkit.validation import NonFiniteResultError
from tensorkit.funbat import _cep
from tensorkit.funbat._cep import (
    core_posterior,
    core_statistics,
    make_sum_plan,
    mode_sums,
    predictive_moments,
    site_parameters,
)
from tensorkit.funbat._ssm import StateSpaceGP, conditional_moments, kalman_filter, kalman_smoother, matern_kernel

KERNELS = ["matern12", "matern32", "matern52"]
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "tensors"


# ----------------------------------------------------------------------------- state-space GP
def dense_posterior(kernel, coords, lengthscale, variance, precision, shift, query):
    """The GP posterior written densely: prior I_R ⊗ K, Gaussian sites, conditional at ``query``."""
    U, R = shift.shape
    points = np.concatenate([coords, query])
    K_all = matern_kernel(kernel, points[:, None] - points[None, :], lengthscale, variance)
    K = K_all[:U, :U]
    prior = np.kron(np.eye(R), K)  # ordered (channel, coordinate)
    site = np.zeros((R * U, R * U))
    for i in range(U):
        rows = np.arange(R) * U + i
        site[np.ix_(rows, rows)] = precision[i]
    cov = prior - prior @ np.linalg.solve(np.eye(R * U) + site @ prior, site @ prior)
    mean = cov @ shift.T.reshape(-1)
    log_z = (-0.5 * np.linalg.slogdet(np.eye(R * U) + prior @ site)[1]
             + 0.5 * shift.T.reshape(-1) @ cov @ shift.T.reshape(-1))
    m = query.shape[0]
    cross = np.kron(np.eye(R), K_all[U:, :U])
    weights = np.linalg.solve(prior, cross.T).T
    q_mean = weights @ mean
    q_cov = np.kron(np.eye(R), K_all[U:, U:]) - weights @ cross.T + weights @ cov @ weights.T
    per_point = lambda vec, n: vec.reshape(R, n).T  # noqa: E731
    marg = lambda C, n: np.stack([C[np.ix_(np.arange(R) * n + i, np.arange(R) * n + i)]  # noqa: E731
                                  for i in range(n)])
    return (per_point(mean, U), marg(cov, U), log_z, per_point(q_mean, m), marg(q_cov, m))


@pytest.mark.parametrize("kernel", KERNELS)
def test_kalman_smoother_equals_dense_gp_with_gaussian_observations(kernel):
    """One mode, one channel, repeated noisy observations: the smoother is the exact GP posterior."""
    rng = np.random.default_rng(0)
    coords = np.sort(rng.uniform(0.0, 3.0, 25))
    counts = rng.integers(1, 4, size=25)
    noise_var = 0.05
    values = [np.sin(2 * t) + np.sqrt(noise_var) * rng.standard_normal(c) for t, c in zip(coords, counts)]
    precision = (counts / noise_var)[:, None, None]
    shift = np.array([v.sum() / noise_var for v in values])[:, None]
    query = np.concatenate([[-0.7, -0.05, 3.2, 4.5], rng.uniform(0.0, 3.0, 8), coords[[0, 7, 24]]])
    gp = StateSpaceGP(kernel, lengthscale=0.6, variance=1.3)
    states = kalman_smoother(gp, coords, precision, shift)
    mean, cov = states.function_moments()
    ref_mean, ref_cov, ref_logz, ref_qmean, ref_qcov = dense_posterior(kernel, coords, 0.6, 1.3, precision, shift,
                                                                       query)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-9)
    np.testing.assert_allclose(cov, ref_cov, atol=1e-10)
    assert states.log_normalizer == pytest.approx(ref_logz, rel=1e-9)
    q_mean, q_cov = conditional_moments(gp, states, query)
    np.testing.assert_allclose(q_mean, ref_qmean, atol=1e-8)
    np.testing.assert_allclose(q_cov, ref_qcov, atol=1e-9)


@pytest.mark.parametrize("kernel", KERNELS)
def test_coupled_channels_and_new_points_equal_dense_gp(kernel):
    """R = 3 channels coupled by full R x R site precisions (some zero), interpolation and both extrapolations."""
    rng = np.random.default_rng(1)
    U, R = 30, 3
    coords = np.sort(rng.uniform(0.0, 2.0, U))
    B = rng.standard_normal((U, R, R))
    precision = B @ B.transpose(0, 2, 1)
    precision[[4, 5, 17]] = 0.0  # coordinates whose messages carry no information
    shift = 2.0 * rng.standard_normal((U, R))
    query = np.concatenate([rng.uniform(-1.0, 3.0, 15), coords[[3, 29]]])
    gp = StateSpaceGP(kernel, lengthscale=0.4, variance=0.8, n_channels=R)
    states = kalman_smoother(gp, coords, precision, shift)
    mean, cov = states.function_moments()
    ref_mean, ref_cov, ref_logz, ref_qmean, ref_qcov = dense_posterior(kernel, coords, 0.4, 0.8, precision, shift,
                                                                       query)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-8)
    np.testing.assert_allclose(cov, ref_cov, atol=1e-9)
    assert states.log_normalizer == pytest.approx(ref_logz, rel=1e-8)
    q_mean, q_cov = conditional_moments(gp, states, query)
    np.testing.assert_allclose(q_mean, ref_qmean, atol=1e-8)
    np.testing.assert_allclose(q_cov, ref_qcov, atol=1e-8)


def test_interpolation_uses_the_joint_posterior_of_the_neighbours():
    """The reference code merges two one-sided predictions and ignores the neighbours' cross covariance."""
    gp = StateSpaceGP("matern12", lengthscale=1.0, variance=1.0)
    coords, precision, shift = np.array([0.0, 1.0]), np.full((2, 1, 1), 4.0), np.array([[4.0], [-4.0]])
    states = kalman_smoother(gp, coords, precision, shift)
    _, cov = conditional_moments(gp, states, np.array([0.5]))
    exact = dense_posterior("matern12", coords, 1.0, 1.0, precision, shift, np.array([0.5]))[4]
    np.testing.assert_allclose(cov, exact, atol=1e-12)
    a = np.exp(-0.5)
    q1 = a * a * states.cov[0, 0, 0] + (1 - a * a)
    q2 = a * a * states.cov[1, 0, 0] + (1 - a * a)
    merged = 1.0 / (1.0 / q1 + a * a / q2)
    assert abs(merged - cov[0, 0, 0]) > 0.05 * cov[0, 0, 0]


def test_batched_filters_agree_with_single_ones():
    rng = np.random.default_rng(2)
    coords = np.sort(rng.uniform(0, 1, 40))
    B = rng.standard_normal((40, 2, 2))
    precision, shift = B @ B.transpose(0, 2, 1), rng.standard_normal((40, 2))
    gps = [StateSpaceGP("matern32", ls, 1.0, 2) for ls in (0.05, 0.2, 1.0)]
    batched = kalman_filter(gps, coords, precision, shift)
    for gp, filtered in zip(gps, batched):
        single = kalman_filter(gp, coords, precision, shift)
        assert filtered.log_normalizer == pytest.approx(single.log_normalizer, rel=1e-12)
        np.testing.assert_allclose(filtered.filt_cov, single.filt_cov, atol=1e-13)


def test_pyro_kernels_stay_out_of_the_global_param_store():
    import pyro

    pyro.clear_param_store()
    a = StateSpaceGP("matern32", 0.1, 1.0).channel_transition(np.array([0.5]))[0]
    b = StateSpaceGP("matern32", 1.0, 1.0).channel_transition(np.array([0.5]))[0]
    assert not np.allclose(a, b)
    assert len(pyro.get_param_store()) == 0


# ----------------------------------------------------------------------------- message sums and core axes
def brute_force(means, seconds, index, y, core_mean, core_second, ranks, cp):
    """Per-entry messages, core statistics and predictions, written out with explicit core indices."""
    K, n = len(ranks), y.shape[0]
    P = ranks[0] if cp else int(np.prod(ranks))
    multi = [(r,) * K for r in range(ranks[0])] if cp else list(np.ndindex(*ranks))
    sites = []
    for k in range(K):
        lam = np.zeros((means[k].shape[0], ranks[k], ranks[k]))
        eta = np.zeros((means[k].shape[0], ranks[k]))
        for e in range(n):
            for p, a in enumerate(multi):
                others_mean = np.prod([means[j][index[j][e], a[j]] for j in range(K) if j != k])
                eta[index[k][e], a[k]] += (y[e] * core_mean[p] - core_second[P, p]) * others_mean
                for q, b in enumerate(multi):
                    others = np.prod([seconds[j][index[j][e], a[j], b[j]] for j in range(K) if j != k])
                    lam[index[k][e], a[k], b[k]] += core_second[p, q] * others
        sites.append((lam, eta))
    phi = np.array([[np.prod([means[j][index[j][e], a[j]] for j in range(K)]) for a in multi] for e in range(n)])
    phi2 = np.array([[[np.prod([seconds[j][index[j][e], a[j], b[j]] for j in range(K)]) for b in multi]
                      for a in multi] for e in range(n)])
    second = np.zeros((P + 1, P + 1))
    second[:P, :P] = phi2.sum(0)
    second[:P, P] = second[P, :P] = phi.sum(0)
    second[P, P] = n
    first = np.append(y @ phi, y.sum())
    return sites, second, first, phi @ core_mean[:P] + core_mean[P]


@pytest.mark.parametrize("cp", [False, True])
def test_one_core_axis_convention_for_messages_core_and_prediction(cp):
    """Unequal ranks (2, 3, 4) and a non-symmetric core: every mode's sums give the same core statistics."""
    rng = np.random.default_rng(3)
    ranks = [3, 3, 3] if cp else [2, 3, 4]
    sizes, n = [4, 5, 3], 60
    index = [rng.integers(0, s, n) for s in sizes]
    for k, s in enumerate(sizes):
        index[k][:s] = np.arange(s)
    means = [rng.standard_normal((s, r)) for s, r in zip(sizes, ranks)]
    seconds = []
    for s, r, m in zip(sizes, ranks, means):
        L = 0.3 * rng.standard_normal((s, r, r))
        seconds.append(L @ L.transpose(0, 2, 1) + m[:, :, None] * m[:, None, :])
    y = rng.standard_normal(n)
    P = ranks[0] if cp else int(np.prod(ranks))
    core_mean = rng.standard_normal(P + 1)
    L = rng.standard_normal((P + 1, P + 1))
    core_second = 0.1 * L @ L.T + np.outer(core_mean, core_mean)
    sites, second, first, prediction = brute_force(means, seconds, index, y, core_mean, core_second, ranks, cp)

    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    tm, ts, ti = [t(m) for m in means], [t(s) for s in seconds], [torch.as_tensor(i) for i in index]
    for k in range(3):
        plan = make_sum_plan(index, sizes, k)
        G, g, h = mode_sums(tm, ts, ti, t(y), plan, cp)
        lam, eta = site_parameters(G, g, h, t(core_mean), t(core_second), ranks, k, cp, tau=1.0)
        np.testing.assert_allclose(lam.numpy(), sites[k][0], atol=1e-10)
        np.testing.assert_allclose(eta.numpy(), sites[k][1], atol=1e-10)
        stats = core_statistics(G, g, h, tm[k], ts[k], ranks, k, cp, (n, y.sum(), y @ y))
        np.testing.assert_allclose(stats.second.numpy(), second, atol=1e-10)
        np.testing.assert_allclose(stats.first.numpy(), first, atol=1e-10)
    rows = [tm[k][ti[k]] for k in range(3)]
    row_seconds = [ts[k][ti[k]] for k in range(3)]
    mean, _ = predictive_moments(rows, row_seconds, t(core_mean), t(core_second), cp)
    np.testing.assert_allclose(mean.numpy(), prediction, atol=1e-10)


def test_fitted_core_follows_the_documented_convention():
    data = make_functional_tucker(n_entries=800, rank=2, noise=0.1, random_state=4)
    model = FunBaT(rank=(2, 3, 2), random_state=0, verbose=0).fit(data.X, data.y)
    assert model.core_mean_.shape == (2, 3, 2) and model.core_cov_.shape == (12, 12)
    u = [model.latent_functions(k, data.X[:, k]) for k in range(3)]
    explicit = model.intercept_ + np.einsum("abc,na,nb,nc->n", model.core_mean_, *u)
    np.testing.assert_allclose(model.predict(data.X), explicit, atol=1e-9)


# ----------------------------------------------------------------------------- fitting
def split(data, n_train):
    return (data.X[:n_train], data.y[:n_train]), (data.X[n_train:], data.y[n_train:], data.f[n_train:])


@pytest.mark.parametrize("core", ["tucker", "cp"])
def test_recovers_a_tensor_drawn_from_the_model(core, device):
    sigma = 0.1
    data = make_functional_tucker(n_entries=3000, rank=2, core=core, noise=sigma, n_coords=30, random_state=0)
    (X, y), (X_test, y_test, f_test) = split(data, 2400)
    model = FunBaT(rank=2, core=core, random_state=0, device=device, verbose=0).fit(X, y)
    mean, std = model.predict(X_test, return_std=True)
    rmse = np.sqrt(np.mean((mean - y_test) ** 2))
    assert rmse < 1.3 * sigma
    assert np.sqrt(np.mean((mean - f_test) ** 2)) < 0.6 * sigma
    coverage = np.mean(np.abs(mean - y_test) <= 1.96 * std)
    assert 0.90 <= coverage <= 0.99
    assert 1 / np.sqrt(model.noise_precision_) == pytest.approx(sigma, rel=0.2)
    assert model.core_mean_.shape == ((2,) if core == "cp" else (2, 2, 2))


def test_extrapolation_widens_the_predictive_interval():
    data = make_functional_tucker(n_entries=3000, rank=2, noise=0.1, n_coords=40, random_state=1)
    inside = data.X[:, 0] <= 0.6
    model = FunBaT(rank=2, random_state=0, verbose=0).fit(data.X[inside], data.y[inside])
    lo, hi = data.X[inside, 0].min(), data.X[inside, 0].max()
    probe = data.X[~inside][:300].copy()
    _, std_out = model.predict(probe, return_std=True)
    probe[:, 0] = np.clip(probe[:, 0] - 0.5, lo, hi)
    _, std_in = model.predict(probe, return_std=True)
    assert np.median(std_out) > 1.5 * np.median(std_in)
    _, latent_std = model.latent_functions(0, [0.5 * (lo + hi), hi + 0.1, hi + 0.5, hi + 2.0], return_std=True)
    assert np.all(np.diff(latent_std, axis=0) > 0)
    before = model.latent_functions(0, [lo - 1.0, lo - 0.1, lo], return_std=True)[1]
    assert np.all(np.diff(before, axis=0) < 0)


def test_permuting_the_modes_permutes_the_fit():
    data = make_functional_tucker(n_entries=1200, rank=2, noise=0.1, n_coords=25, random_state=2)
    perm = [2, 0, 1]
    kwargs = dict(rank=(2, 3, 2), n_epochs=40, random_state=3, verbose=0)
    model = FunBaT(**kwargs).fit(data.X, data.y)
    permuted = FunBaT(**{**kwargs, "rank": tuple(np.array(kwargs["rank"])[perm])}).fit(data.X[:, perm], data.y)
    X_new = np.random.default_rng(0).uniform(-0.2, 1.2, size=(200, 3))
    np.testing.assert_allclose(permuted.predict(X_new[:, perm]), model.predict(X_new), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(permuted.core_mean_, np.transpose(model.core_mean_, perm), rtol=1e-6, atol=1e-9)
    assert permuted.n_iter_ == model.n_iter_


def test_core_has_a_proper_gaussian_prior():
    stats = _cep.CoreStatistics(torch.zeros(5, 5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64), 0.0)
    precision, shift = core_posterior(stats, tau=3.0, prior_var=0.25)
    np.testing.assert_allclose(precision.numpy(), 4.0 * np.eye(5))  # no data: exactly the prior
    # A 3 x 3 core from a 2 x 2 grid of values: the data hardly constrain it (the authors' update, the
    # inverse of the summed messages alone, has nothing to fall back on); with the prior the posterior
    # covariance is proper and never wider than the prior (posterior precision >= prior precision).
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 5)
    y = np.array([1.0, 2.0, 3.0, 5.0] * 5) + 0.01 * np.random.default_rng(0).standard_normal(20)
    model = FunBaT(rank=3, core_prior=0.5, n_epochs=30, random_state=0, verbose=0).fit(X, y)
    eigenvalues = np.linalg.eigvalsh(model.core_cov_)
    assert np.all(np.isfinite(model.core_cov_)) and eigenvalues.min() > 0
    assert eigenvalues.max() <= 0.5 * np.var(y) * (1 + 1e-9)
    assert np.all(np.isfinite(model.predict(X)))
    shrunk = FunBaT(rank=2, core_prior=1e-8, n_epochs=20, random_state=0, verbose=0).fit(X, y)
    assert np.abs(shrunk.core_mean_).max() < 1e-3
    np.testing.assert_allclose(shrunk.predict(X), shrunk.intercept_, atol=1e-2)


def test_objective_never_decreases_without_damping():
    data = make_functional_tucker(n_entries=1500, rank=2, noise=0.1, random_state=5)
    model = FunBaT(rank=2, damping=1.0, tol=0, n_epochs=40, n_init=1, random_state=0, verbose=0).fit(data.X, data.y)
    objective = np.array([h["objective"] for h in model.history_])
    assert np.all(np.diff(objective) >= -1e-9 * np.abs(objective[1:]))
    assert model.n_iter_ == len(model.history_) == 40
    assert {"epoch", "train_rmse", "noise_std", "objective", "lengthscale"} <= set(model.history_[0])


def test_damping_still_converges():
    data = make_functional_tucker(n_entries=1500, rank=2, noise=0.1, random_state=6)
    model = FunBaT(rank=2, damping=0.6, random_state=0, verbose=0).fit(data.X[:1200], data.y[:1200])
    assert np.sqrt(np.mean((model.predict(data.X[1200:]) - data.y[1200:]) ** 2)) < 0.15


def test_integer_coordinates_classical_completion():
    """A 20 x 15 x 12 grid with 40 % of its entries observed, indices as coordinates."""
    rng = np.random.default_rng(7)
    grid = [np.sin(np.linspace(0, 3, s)[:, None] * (1 + np.arange(2))) for s in (20, 15, 12)]
    core = rng.standard_normal((2, 2, 2))
    full = np.einsum("abc,ia,jb,kc->ijk", core, *grid)
    full /= full.std()
    idx = np.array(np.unravel_index(rng.permutation(full.size), full.shape)).T
    n_train = int(0.4 * full.size)
    y = full[tuple(idx.T)] + 0.05 * rng.standard_normal(full.size)
    model = FunBaT(rank=2, random_state=0, verbose=0).fit(idx[:n_train], y[:n_train])
    rmse = np.sqrt(np.mean((model.predict(idx[n_train:]) - full[tuple(idx[n_train:].T)]) ** 2))
    assert rmse < 0.1


def test_pickle_round_trip_gives_identical_predictions(tmp_path):
    data = make_functional_tucker(n_entries=600, rank=2, random_state=8)
    model = FunBaT(rank=2, n_epochs=20, random_state=0, verbose=0).fit(data.X, data.y)
    path = tmp_path / "funbat.pkl"
    path.write_bytes(pickle.dumps(model))
    restored = pickle.loads(path.read_bytes())
    X_new = np.random.default_rng(1).uniform(-0.5, 1.5, size=(100, 3))
    for a, b in zip(restored.predict(X_new, return_std=True), model.predict(X_new, return_std=True)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(restored.latent_functions(1, [0.3, 2.0]), model.latent_functions(1, [0.3, 2.0]))


def test_deterministic_given_random_state_and_torch_in_torch_out(device):
    data = make_functional_tucker(n_entries=600, rank=2, random_state=9)
    a = FunBaT(rank=2, n_epochs=15, random_state=4, device=device, verbose=0).fit(data.X, data.y)
    b = FunBaT(rank=2, n_epochs=15, random_state=4, device=device, verbose=0).fit(torch.tensor(data.X),
                                                                                 torch.tensor(data.y))
    prediction = b.predict(torch.tensor(data.X))
    assert isinstance(prediction, torch.Tensor) and prediction.device.type == "cpu"
    if device == "cpu":
        np.testing.assert_array_equal(prediction.numpy(), a.predict(data.X))
    else:  # CUDA's atomic scatter sums add in a varying order: equal up to float64 round-off
        np.testing.assert_allclose(prediction.numpy(), a.predict(data.X), rtol=1e-11, atol=1e-13)


def test_device_fit_matches_cpu(device):
    data = make_functional_tucker(n_entries=800, rank=2, random_state=10)
    cpu = FunBaT(rank=2, n_epochs=15, random_state=0, device="cpu", verbose=0).fit(data.X, data.y)
    other = FunBaT(rank=2, n_epochs=15, random_state=0, device=device, verbose=0).fit(data.X, data.y)
    np.testing.assert_allclose(other.predict(data.X), cpu.predict(data.X), rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- memory
def test_chunked_grouped_sums_equal_plain_per_entry_sums():
    rng = np.random.default_rng(11)
    sizes, ranks, n = [6, 5, 4, 3], [2, 2, 3, 2], 400
    index = [rng.integers(0, s, n) for s in sizes]
    means = [torch.as_tensor(rng.standard_normal((s, r))) for s, r in zip(sizes, ranks)]
    seconds = [torch.as_tensor(rng.standard_normal((s, r, r))) for s, r in zip(sizes, ranks)]
    y = torch.as_tensor(rng.standard_normal(n))
    ti = [torch.as_tensor(i) for i in index]
    for k in range(4):
        plan = make_sum_plan(index, sizes, k)
        big = mode_sums(means, seconds, ti, y, plan, cp=False)
        small = mode_sums(means, seconds, ti, y, plan, cp=False, chunk_elements=50)
        # the plain per-entry sum: Kronecker products of the other modes in increasing order
        others = [j for j in range(4) if j != k]
        second, first = seconds[others[0]][ti[others[0]]], means[others[0]][ti[others[0]]]
        for j in others[1:]:
            second = _cep._kron_rows(second, seconds[j][ti[j]])
            first = _cep._kron_rows(first, means[j][ti[j]])
        G = torch.zeros(sizes[k], *second.shape[1:], dtype=torch.float64).index_add_(0, ti[k], second)
        g = torch.zeros(sizes[k], first.shape[1], dtype=torch.float64).index_add_(0, ti[k], first * y[:, None])
        for ours in (big, small):
            np.testing.assert_allclose(ours[0].numpy(), G.numpy(), atol=1e-11)
            np.testing.assert_allclose(ours[1].numpy(), g.numpy(), atol=1e-11)


def test_no_intermediate_grows_with_entries_times_core_size(monkeypatch):
    """Every per-entry/per-group product stays within the chunk, whatever the number of entries."""
    sizes = []
    original = _cep._kron_rows

    def spy(left, right):
        out = original(left, right)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(_cep, "_kron_rows", spy)
    monkeypatch.setattr(_cep, "CHUNK_ELEMENTS", 1 << 14)
    for n in (2000, 8000):
        data = make_functional_tucker(n_entries=n, rank=3, n_coords=200, random_state=12)
        sizes.clear()
        FunBaT(rank=3, n_epochs=2, n_init=1, learn_lengthscale=False, random_state=0, verbose=0).fit(data.X, data.y)
        assert max(sizes) <= 1 << 14
        assert max(sizes) < n * 3 ** 4  # a single per-entry R^(2(K-1)) array would already be this large


def test_peak_memory_grows_slowly_with_entries():
    """Peak RSS of a fit with 4x the entries: a few MB more, far from n x R^(2K) (here 32 kB per entry)."""
    script = """
import resource, sys, numpy as np, torch
torch.set_num_threads(1)
from tensorkit import FunBaT, make_functional_tucker
from tensorkit.validation import NonFiniteResultError
from tensorkit.funbat import _cep
_cep.CHUNK_ELEMENTS = 1 << 16  # 0.5 MB chunks, so that the fixed chunk size does not hide the growth
peaks = []
for n in (4000, 16000):
    data = make_functional_tucker(n_entries=n, rank=4, n_coords=300, random_state=0)
    FunBaT(rank=4, n_epochs=2, n_init=1, random_state=0, device="cpu", verbose=0).fit(data.X, data.y)
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(peaks[1] - peaks[0])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    growth_kb = int(result.stdout.split()[-1])
    assert growth_kb < 30_000  # per-entry storage of R^(2K) = 4096 doubles would add 12000 x 32 kB = 390 MB


# ----------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def small():
    return make_functional_tucker(n_entries=300, rank=2, random_state=13)


@pytest.mark.parametrize("make_input, message", [
    (lambda d: (np.where(np.arange(d.X.size).reshape(d.X.shape) == 5, np.nan, d.X), d.y), "NaN"),
    (lambda d: (d.X, np.where(np.arange(d.y.size) == 3, np.inf, d.y)), "infinity"),
    (lambda d: (d.X, d.y[:-1]), "inconsistent numbers of samples"),
    (lambda d: (np.column_stack([d.X[:, :2], np.full(len(d.y), 0.5)]), d.y), "mode 2.*at least two"),
])
def test_bad_data_raises_clear_errors(small, make_input, message):
    X, y = make_input(small)
    with pytest.raises(ValueError, match=message):
        FunBaT(verbose=0).fit(X, y)


@pytest.mark.parametrize("params, message", [
    (dict(rank=0), "rank"),
    (dict(rank=(2, 2)), "one per mode"),
    (dict(kernel="rbf"), "kernel"),
    (dict(core="parafac"), "core"),
    (dict(core="cp", rank=(2, 3, 2)), "same rank"),
    (dict(rank=11), "at most 1024"),
    (dict(lengthscale=-1.0), "lengthscale"),
    (dict(variance=(1.0, 0.0, 1.0)), "variance"),
    (dict(damping=0.0), "damping"),
    (dict(n_epochs=0), "n_epochs"),
    (dict(n_init=0), "n_init"),
    (dict(core_prior=-1.0), "core_prior"),
])
def test_bad_parameters_raise(small, params, message):
    with pytest.raises(ValueError, match=message):
        FunBaT(verbose=0, **params).fit(small.X, small.y)


def test_predict_and_latent_functions_check_their_input(small):
    model = FunBaT(rank=2, n_epochs=5, random_state=0, verbose=0).fit(small.X, small.y)
    with pytest.raises(ValueError, match="3 features"):
        model.predict(small.X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="mode must be"):
        model.latent_functions(3, [0.5])
    with pytest.raises(ValueError, match="NaN"):
        model.latent_functions(0, [np.nan])


@pytest.mark.parametrize("make_input, name", [
    (lambda d: (d.X + 0j, d.y), "X"),
    (lambda d: (torch.tensor(d.X) + 1j, d.y), "X"),
    (lambda d: (d.X, d.y + 1j), "y"),
    (lambda d: (d.X, list(d.y[:-1]) + [1j]), "y"),
])
def test_complex_data_is_refused_before_any_cast(small, make_input, name):
    X, y = make_input(small)
    with pytest.raises(TypeError, match=f"^{name} must hold real numbers; got complex values"):
        FunBaT(verbose=0).fit(X, y)


def test_complex_coordinates_are_refused_by_predict_and_latent_functions(small):
    model = FunBaT(rank=2, n_epochs=2, n_init=1, random_state=0, verbose=0).fit(small.X, small.y)
    with pytest.raises(TypeError, match="^X must hold real numbers"):
        model.predict(small.X + 0j)
    with pytest.raises(TypeError, match="^coords must hold real numbers"):
        model.latent_functions(0, [0.5 + 1j])


@pytest.mark.parametrize("make_input, message", [
    (lambda d: (d.X[:, 0], d.y), r"^X must be a 2-D array of coordinates .*got shape \(300,\)"),
    (lambda d: (d.X[None], d.y), r"^X must be a 2-D array of coordinates .*got shape \(1, 300, 3\)"),
    (lambda d: (d.X, d.y[:-1]), r"^X and y have inconsistent numbers of samples: X has 300 rows \(entries\), y has 299"),
])
def test_wrong_shapes_name_x_and_y(small, make_input, message):
    X, y = make_input(small)
    with pytest.raises(ValueError, match=message):
        FunBaT(verbose=0).fit(X, y)


@pytest.mark.parametrize("max_frequency", [float("nan"), float("inf"), 0.0])
def test_generator_refuses_a_max_frequency_that_would_give_nan(max_frequency):
    with pytest.raises(ValueError, match=r"^The 'max_frequency' parameter .* range \(0.0, inf\)"):
        make_functional_tucker(n_entries=20, max_frequency=max_frequency, random_state=0)


def test_a_mode_whose_range_overflows_is_named(small):
    X = small.X.copy()
    X[:2, 1] = [-1.7e308, 1.7e308]
    with pytest.raises(ValueError, match="^column 1 of X spans -1.7e\\+308 to 1.7e\\+308, a range beyond float64"):
        FunBaT(verbose=0).fit(X, small.y)


def test_a_target_too_large_to_standardise_raises_instead_of_fitting_nan(small):
    model = FunBaT(rank=2, n_epochs=2, n_init=1, random_state=0, verbose=0)
    with pytest.raises(NonFiniteResultError, match="FunBaT's fitted posterior .*likely cause: y is too large"):
        model.fit(small.X, small.y * 1e160)
    assert not hasattr(model, "core_mean_")


def test_predictions_too_far_from_the_data_raise_instead_of_returning_nan(small):
    model = FunBaT(rank=2, n_epochs=2, n_init=1, random_state=0, verbose=0).fit(small.X, small.y)
    far = np.array([[-1.7e308, 0.5, 0.5]])
    with pytest.raises(NonFiniteResultError, match="FunBaT's predictive mean .*likely cause: the coordinates lie"):
        model.predict(far)
    with pytest.raises(NonFiniteResultError, match="FunBaT's latent functions of mode 0"):
        model.latent_functions(0, far[:, 0])


# ----------------------------------------------------------------------------- real data
def load(name):
    path = DATA / f"{name}.npz"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    data = np.load(path)
    return data["train_coords_fold0"], data["train_y_fold0"], data["test_coords_fold0"], data["test_y_fold0"]


@pytest.mark.slow
@pytest.mark.parametrize("name, rank, target", [("us_temp", 3, 1.379), ("beijing_PM25", 3, 0.335)])
def test_beats_the_best_baseline_on_real_data(name, rank, target):
    """Fold 0; targets: distance-weighted kNN (US-TEMP, °F) and the per-day mean (PM2.5), see MANIFEST.txt."""
    X, y, X_test, y_test = load(name)
    model = FunBaT(rank=rank, random_state=0, verbose=0).fit(X, y)
    mean, std = model.predict(X_test, return_std=True)
    assert np.sqrt(np.mean((mean - y_test) ** 2)) < target
    assert 0.85 <= np.mean(np.abs(mean - y_test) <= 1.96 * std) <= 0.99


def test_converged_lengthscale_search_pauses_and_a_move_restarts_it(monkeypatch):
    """A settled search (factor at its floor, ℓ keeps winning) skips 1, 2, 4, 8 epochs; one that moves runs every epoch."""
    from tensorkit.funbat import _estimator

    data = make_functional_tucker(n_entries=1500, rank=2, n_coords=40, random_state=3)
    searched = []

    def settled(mode, precision, shift, factor):
        searched.append(len(searched))
        states = kalman_smoother(mode.gp, mode.coords, precision, shift)
        return states, mode, _estimator.LS_SEARCH_FLOOR  # never moves

    monkeypatch.setattr(_estimator, "_lengthscale_step", settled)
    model = FunBaT(rank=2, n_epochs=40, tol=0.0, n_init=1, random_state=0, verbose=0).fit(data.X, data.y)
    # per mode, epochs 2..40 (39 visits): searches at 2, 4, 7, 12, 21, 30, 39 (pauses 1, 2, 4, 8, 8, 8)
    assert len(searched) == 3 * 7
    assert np.isfinite(model.history_[-1]["objective"])

    searched.clear()

    def moving(mode, precision, shift, factor):
        searched.append(len(searched))
        gp = mode.gp
        moved = mode._replace(gp=StateSpaceGP(gp.kernel, gp.lengthscale * 1.01, gp.variance, gp.n_channels))
        return kalman_smoother(moved.gp, moved.coords, precision, shift), moved, _estimator.LS_SEARCH_FLOOR

    monkeypatch.setattr(_estimator, "_lengthscale_step", moving)
    FunBaT(rank=2, n_epochs=10, tol=0.0, n_init=1, random_state=0, verbose=0).fit(data.X, data.y)
    assert len(searched) == 3 * 9  # every epoch after the first, every mode


# ----------------------------------------------------------------------------- issue 33
def test_parameters_after_rank_are_keyword_only():
    assert FunBaT(2).rank == 2 and FunBaT().verbose == 1
    with pytest.raises(TypeError):
        FunBaT(2, "matern12")


def test_per_mode_parameters_are_checked_before_the_data(small):
    with pytest.raises(ValueError, match=r"^kernel must be one of .* or one per mode"):
        FunBaT(kernel=("matern32", "rbf", "matern32"), verbose=0).fit(small.X[:, :1], small.y)


def test_fitted_core_stays_in_the_fit_dtype_and_a_pickle_predicts_the_same(small):
    model = FunBaT(rank=2, n_epochs=3, n_init=1, random_state=0, dtype="float32", verbose=0).fit(small.X, small.y)
    assert model._core_second_std.dtype == torch.float32
    restored = pickle.loads(pickle.dumps(model))
    assert restored._core_mean_std.device.type == "cpu"
    np.testing.assert_array_equal(restored.predict(small.X[:20]), model.predict(small.X[:20]))


def test_datasets_module_is_the_home_of_the_generator():
    from tensorkit import datasets, funbat
    assert funbat.make_functional_tucker is datasets.make_functional_tucker
    assert isinstance(datasets.make_functional_tucker(n_entries=10, random_state=0), datasets.FunctionalTensor)
