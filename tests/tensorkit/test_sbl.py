import pickle

import numpy as np
import pytest
import torch

from tensorkit import KroneckerSBL, kronecker_sbl, make_kronecker_problem, nmse_db, support_recovery_rate
from tensorkit.sbl import COUPLING_FLOOR, INNER_MAX_ITER, INNER_TOL
from tensorkit.validation import NonFiniteResultError


def dense_kron(arrays):
    result = arrays[0]
    for array in arrays[1:]:
        result = np.kron(result, array)
    return result


def dense_reference_sbl(factors, y, method, noise_var=None, max_iter=150, tol=1e-4, prune=1e-3, betas=None):
    """EM-SBL with the dictionary and the posterior covariance formed densely (NumPy).

    The E-step is the textbook one, Σ = Γ - Γ Φ^H (σ² I + Φ Γ Φ^H)^{-1} Φ Γ; the M-steps are
    written from the paper's equations (AM: closed-form cyclic updates with rescaling, NNLS under
    coupling; SVD: sequential rank-1 SVDs).
    """
    from scipy.optimize import nnls

    K = len(factors)
    sizes = [f.shape[1] for f in factors]
    active = [np.arange(n) for n in sizes]
    A = [np.array(f) for f in factors]
    g = [np.full(n, 1 / np.sqrt(n)) for n in sizes[:-1]] + [np.full(sizes[-1], np.sqrt(np.prod(sizes[:-1])))]
    betas = betas or [None] * K
    coupling = [None if b is None else np.eye(n) + b * (np.eye(n, k=1) + np.eye(n, k=-1)) for n, b in zip(sizes, betas)]
    g = [gk if c is None else COUPLING_FLOOR + c @ np.ones(len(gk)) for gk, c in zip(g, coupling)]
    learn = noise_var is None
    sigma2 = 0.1 * np.var(y) if learn else noise_var

    def full(g, active):
        parts = []
        for gk, ak, n in zip(g, active, sizes):
            part = np.zeros(n)
            part[ak] = gk
            parts.append(part)
        return dense_kron(parts)

    def posterior(A, g, sigma2):
        Phi, G = dense_kron(A), dense_kron(g)
        C = sigma2 * np.eye(Phi.shape[0]) + (Phi * G) @ Phi.conj().T
        solved = np.linalg.solve(C, Phi * G)
        Sigma = np.diag(G) - (G[:, None] * Phi.conj().T) @ solved
        return Phi, G, G * (Phi.conj().T @ np.linalg.solve(C, y)), np.real(np.diag(Sigma))

    previous = full(g, active)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        if prune > 0:
            for k in range(K):
                keep = g[k] >= prune * g[k].max()
                active[k], A[k], g[k] = active[k][keep], A[k][:, keep], g[k][keep]
                if coupling[k] is not None:
                    coupling[k] = coupling[k][np.ix_(keep, keep)]
        Phi, G, mu, var = posterior(A, g, sigma2)
        V = (np.abs(mu) ** 2 + np.maximum(var, 0)).reshape([len(gk) for gk in g])
        if method == "svd":
            new, rest = [], V
            for n in V.shape[:-1]:
                u, s, vh = np.linalg.svd(rest.reshape(n, -1), full_matrices=False)
                new.append(np.abs(u[:, 0]))
                rest = np.abs(s[0] * vh[0])
            g = new + [rest]
        else:
            limit = INNER_MAX_ITER["coupled" if any(c is not None for c in coupling) else "plain"]
            for _ in range(limit):
                before = dense_kron(g)
                for k in range(K):
                    W = V.copy()
                    for l in range(K):
                        if l != k:
                            shape = [1] * K
                            shape[l] = -1
                            W = W / g[l].reshape(shape)
                    target = W.sum(axis=tuple(l for l in range(K) if l != k)) / (V.size // V.shape[k])
                    g[k] = target if coupling[k] is None else COUPLING_FLOOR + coupling[k] @ nnls(coupling[k], target)[0]
                scale = 1.0
                for k in range(K - 1):
                    norm = np.linalg.norm(g[k])
                    g[k], scale = g[k] / norm, scale * norm
                g[-1] = g[-1] * scale
                if np.linalg.norm(dense_kron(g) - before) <= INNER_TOL * np.linalg.norm(before):
                    break
        if learn:
            sigma2 = (np.linalg.norm(y - Phi @ mu) ** 2 + sigma2 * np.sum(1 - var / G)) / len(y)
        current = full(g, active)
        change = np.linalg.norm(current - previous) / np.linalg.norm(previous)
        previous = current
        if change < tol:
            break
    _, _, mu, _ = posterior(A, g, sigma2)
    coef = np.zeros(int(np.prod(sizes)), dtype=mu.dtype)
    coef[full([np.ones(len(gk)) for gk in g], active) != 0] = mu
    return coef, [full_k for full_k in _full_factors(g, active, sizes)], sigma2, n_iter


def _full_factors(g, active, sizes):
    out = []
    for gk, ak, n in zip(g, active, sizes):
        part = np.zeros(n)
        part[ak] = gk
        out.append(part)
    return out


SHAPES = {1: ((12, 20),), 2: ((6, 8), (5, 7)), 3: ((3, 4), (4, 5), (2, 3))}


@pytest.mark.parametrize("n_factors", [1, 2, 3])
@pytest.mark.parametrize("complex_valued", [False, True])
@pytest.mark.parametrize("method", ["am", "svd"])
@pytest.mark.parametrize("max_iter", [1, 4, 150])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_same_iterates_as_dense_em(n_factors, complex_valued, method, max_iter, device):
    problem = make_kronecker_problem(SHAPES[n_factors], support_sizes=2, snr_db=25, complex_valued=complex_valued,
                                     random_state=n_factors)
    model = KroneckerSBL(method=method, max_iter=max_iter, device=device).fit(problem.factors, problem.y)
    prune = 1e-2 if method == "am" else 1e-3
    coef, gammas, noise_var, n_iter = dense_reference_sbl(problem.factors, problem.y, method, max_iter=max_iter,
                                                          prune=prune)
    assert model.n_iter_ == n_iter
    scale = np.abs(coef).max()
    np.testing.assert_allclose(model.coef_, coef, atol=1e-8 * scale)
    assert model.noise_var_ == pytest.approx(noise_var, rel=1e-7)
    for ours, theirs in zip(model.gammas_, gammas):
        np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-10 * theirs.max())


@pytest.mark.parametrize("complex_valued", [False, True])
def test_classic_and_block_match_dense_em(complex_valued):
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, snr_db=25, complex_valued=complex_valued, random_state=5)
    classic = KroneckerSBL(method="classic", noise_var=problem.noise_var).fit(problem.factors, problem.y)
    coef, gammas, _, n_iter = dense_reference_sbl([dense_kron(problem.factors)], problem.y, "am",
                                                  noise_var=problem.noise_var, prune=1e-3)
    assert classic.n_iter_ == n_iter
    np.testing.assert_allclose(classic.coef_, coef, atol=1e-8 * np.abs(coef).max())
    np.testing.assert_allclose(classic.gammas_[0], gammas[0], rtol=1e-7, atol=1e-12)

    block = KroneckerSBL(method="am", block=(0.5, None)).fit(problem.factors, problem.y)
    coef, gammas, noise_var, n_iter = dense_reference_sbl(problem.factors, problem.y, "am", prune=1e-2,
                                                          betas=[0.5, None])
    assert block.n_iter_ == n_iter
    np.testing.assert_allclose(block.coef_, coef, atol=1e-8 * np.abs(coef).max())
    assert block.noise_var_ == pytest.approx(noise_var, rel=1e-7)


@pytest.mark.parametrize("method", ["am", "svd"])
def test_recovers_planted_kronecker_support_at_20db(method):
    """16 x 32 factors, 4 x 4 support, 20 dB: the paper's setting (oracle LS floor about -27.7 dB)."""
    scores = []
    for seed in range(10):
        problem = make_kronecker_problem(((16, 32), (16, 32)), support_sizes=4, snr_db=20, random_state=seed)
        model = KroneckerSBL(method=method).fit(problem.factors, problem.y)
        scores.append((nmse_db(model.coef_, problem.coef), support_recovery_rate(model.coef_, problem.coef),
                       model.noise_var_ / problem.noise_var))
    nmse, recovery, noise_ratio = np.array(scores).T
    assert nmse.mean() < -20
    assert recovery.mean() > 0.9
    assert np.all((noise_ratio > 0.5) & (noise_ratio < 2.0))


def test_kronecker_hyperparameters_beat_classic_on_few_measurements():
    """The point of the structure: fewer unknown hyperparameters, better recovery from few measurements."""
    gaps = []
    for seed in range(5):
        problem = make_kronecker_problem(((10, 32), (10, 32)), support_sizes=4, snr_db=20, random_state=seed)
        kron_score = nmse_db(KroneckerSBL(method="am").fit(problem.factors, problem.y).coef_, problem.coef)
        classic_score = nmse_db(KroneckerSBL(method="classic").fit(problem.factors, problem.y).coef_, problem.coef)
        gaps.append(classic_score - kron_score)
    assert np.mean(gaps) > 3


def test_warns_when_max_iter_is_reached():
    from sklearn.exceptions import ConvergenceWarning

    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        KroneckerSBL(max_iter=2).fit(problem.factors, problem.y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_classic_em_objective_never_increases():
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, snr_db=20, random_state=2)
    model = KroneckerSBL(method="classic", prune=0, noise_var=problem.noise_var, tol=0, max_iter=40)
    objective = [h["objective"] for h in model.fit(problem.factors, problem.y).history_]
    assert np.all(np.diff(objective) <= 1e-9 * np.abs(objective[:-1]))
    assert objective[-1] < objective[0]


def test_predict_applies_the_dictionary_and_four_factors_work():
    problem = make_kronecker_problem(((3, 4), (2, 3), (3, 3), (2, 2)), support_sizes=1, snr_db=40, random_state=0)
    model = KroneckerSBL(method="svd").fit(problem.factors, problem.y)
    assert len(model.gammas_) == 4 and model.coef_.shape == (4 * 3 * 3 * 2,)
    np.testing.assert_allclose(model.predict(problem.factors), dense_kron(problem.factors) @ model.coef_, atol=1e-12)
    assert model.score(problem.factors, problem.y) > 0.9
    assert nmse_db(model.coef_, problem.coef) < -10
    torch_prediction = model.predict([torch.tensor(f) for f in problem.factors])
    assert isinstance(torch_prediction, torch.Tensor)


def test_support_is_the_product_of_the_surviving_factor_entries():
    problem = make_kronecker_problem(((16, 32), (16, 32)), support_sizes=4, snr_db=25, random_state=1)
    model = KroneckerSBL(method="am").fit(problem.factors, problem.y)
    expected = dense_kron([(g > 0).astype(int) for g in model.gammas_]) > 0
    np.testing.assert_array_equal(model.support_, expected)
    assert np.all(model.coef_[~model.support_] == 0)


def test_fixed_noise_variance_is_kept_and_pickle_round_trip():
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=0)
    model = KroneckerSBL(method="am", noise_var=0.01).fit(problem.factors, problem.y)
    assert model.noise_var_ == 0.01
    assert all(h["noise_var"] == 0.01 for h in model.history_)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(problem.factors), model.predict(problem.factors))


def test_functional_core_matches_estimator():
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=3)
    result = kronecker_sbl([torch.tensor(f) for f in problem.factors], torch.tensor(problem.y), method="svd")
    model = KroneckerSBL(method="svd").fit(problem.factors, problem.y)
    np.testing.assert_allclose(result.coef.numpy(), model.coef_)


@pytest.mark.parametrize("make_input, message", [
    (lambda p: (p.factors, p.y[:-1]), "length"),
    (lambda p: ([p.factors[0], np.full((5, 7), np.nan)], p.y), r"X\[1\].*NaN"),
    (lambda p: ([], p.y), "non-empty"),
    (lambda p: (p.factors, np.full_like(p.y, np.inf)), "y contains"),
    (lambda p: ([np.ones(3)], p.y), "2-D"),
])
def test_bad_input_raises_clear_errors(make_input, message):
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=0)
    X, y = make_input(problem)
    with pytest.raises(ValueError, match=message):
        KroneckerSBL().fit(X, y)


@pytest.mark.parametrize("params, message", [
    (dict(method="lasso"), "method"),
    (dict(noise_var=-1.0), "noise_var"),
    (dict(max_iter=0), "max_iter"),
    (dict(prune=1.5), "prune"),
    (dict(method="svd", block=0.5), "block"),
    (dict(method="am", block=(0.5,)), "one value per factor"),
    (dict(method="am", block=-1.0), "'block' parameter"),
    (dict(method="am", block=(0.5, -1.0)), "non-negative"),
    (dict(tol=float("nan")), "'tol' parameter"),
])
def test_bad_parameters_raise(params, message):
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=0)
    with pytest.raises(ValueError, match=message):
        KroneckerSBL(**params).fit(problem.factors, problem.y)


def test_predict_checks_factor_shapes():
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=0)
    model = KroneckerSBL().fit(problem.factors, problem.y)
    with pytest.raises(ValueError, match="expecting 56 features"):
        model.predict([problem.factors[0], np.ones((5, 6))])


def test_scales_to_a_problem_dense_sbl_cannot_allocate():
    """n = 64 x 64 x 8 unknowns: the dense dictionary alone would be 2304 x 32768 x 8 bytes = 0.6 GB."""
    problem = make_kronecker_problem(((24, 64), (24, 64), (4, 8)), support_sizes=(3, 3, 2), snr_db=25, random_state=0)
    model = KroneckerSBL(method="svd").fit(problem.factors, problem.y)
    assert nmse_db(model.coef_, problem.coef) < -30
    assert model.support_.sum() == 18


# ----------------------------------------------------------------------------- issue 32
@pytest.mark.parametrize("make_X, y_length", [
    (lambda p: p.factors[0], None),                                         # one factor instead of the list
    (lambda p: np.stack([p.factors[0], p.factors[0]]), 36),                 # factors stacked in one array
    (lambda p: torch.tensor(np.stack([p.factors[0], p.factors[0]])), 36),
    (lambda p: np.array([p.factors[0], p.factors[1][:, :3]], dtype=object), None),
], ids=["one-factor", "stacked", "stacked-tensor", "object-array"])
def test_one_array_instead_of_the_factor_list_says_what_x_must_be(make_X, y_length):
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=0)
    y = problem.y if y_length is None else np.ones(y_length)
    with pytest.raises(ValueError, match=r"X must be a list or tuple of factor matrices \[A_1, \.\.\., A_K\]"):
        KroneckerSBL().fit(make_X(problem), y)


def test_values_beyond_the_dtype_are_refused_not_turned_into_infinity():
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=0)
    with pytest.raises(ValueError, match=r"^y holds values beyond the range of float32"):
        KroneckerSBL(dtype="float32").fit(problem.factors, problem.y * 1e150)
    with pytest.raises(ValueError, match=r"^X\[1\] holds values beyond the range of float32"):
        KroneckerSBL(dtype="float32").fit([problem.factors[0], problem.factors[1] * 1e40], problem.y)


def test_overflowing_fit_raises_instead_of_returning_nan():
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=0)
    model = KroneckerSBL()
    with pytest.raises(NonFiniteResultError, match="KroneckerSBL's coef_.*likely cause: y or the factors are too"):
        model.fit(problem.factors, problem.y * 1e160)
    assert not hasattr(model, "coef_")
    with pytest.raises(ValueError, match=r"KroneckerSBL \(svd\) failed: linalg\..*likely cause: y or the factors"):
        model.fit([f * 1e160 for f in problem.factors], problem.y)


def test_overflowing_prediction_raises_instead_of_returning_inf():
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=0)
    model = KroneckerSBL().fit(problem.factors, problem.y)
    with pytest.raises(NonFiniteResultError, match="KroneckerSBL prediction holds 30 non-finite values"):
        model.predict([f * 1e300 for f in problem.factors])


@pytest.mark.parametrize("params, name", [
    (dict(noise_var=1j), "noise_var"),
    (dict(tol="small"), "tol"),
    (dict(prune=0.5j), "prune"),
    (dict(method="am", block=np.complex128(0.5)), "block"),
])
def test_non_real_parameters_raise_value_errors_naming_them(params, name):
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=0)
    with pytest.raises(ValueError, match=name):
        KroneckerSBL(**params).fit(problem.factors, problem.y)


@pytest.mark.parametrize("snr_db", [float("nan"), -float("inf"), "20"])
def test_planted_problem_refuses_an_snr_that_would_give_nan_or_no_problem(snr_db):
    with pytest.raises(ValueError, match="^The 'snr_db' parameter of make_kronecker_problem must be"):
        make_kronecker_problem(SHAPES[2], snr_db=snr_db, random_state=0)


# ----------------------------------------------------------------------------- issue 33
def test_parameters_after_method_are_keyword_only_and_verbose_defaults_to_one():
    assert KroneckerSBL().verbose == 1
    assert KroneckerSBL("am").method == "am"
    with pytest.raises(TypeError):
        KroneckerSBL("am", None)


def test_history_is_one_dict_per_em_iteration():
    problem = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=0)
    model = KroneckerSBL(verbose=0).fit(problem.factors, problem.y)
    assert [h["iteration"] for h in model.history_] == list(range(1, model.n_iter_ + 1))
    assert {"relative_change", "noise_var", "n_active", "objective"} <= set(model.history_[0])


def test_datasets_module_is_the_home_of_the_planted_problem():
    from tensorkit import datasets
    a = datasets.make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=5)
    b = make_kronecker_problem(SHAPES[2], support_sizes=2, random_state=5)
    assert isinstance(a, datasets.KroneckerProblem)
    np.testing.assert_array_equal(a.y, b.y)
