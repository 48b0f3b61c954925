"""DSL recommenders (MF and LightGCN backbones trained sparse from scratch)."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

from recsys.datasets import make_low_rank_interactions
from recsys._dsl_net import _DSLNet, _LightGCNPropagation, _SquaredRowNorms, mean_of_layers
from recsys.dsl import DSLRecommender, normalized_adjacency, sample_negatives
from recsys.metrics import evaluate_ranking
from recsys.sparse import SparseTable, degree_row_counts

GOWALLA = Path(__file__).resolve().parents[3] / "shared" / "data" / "recsys" / "gowalla" / "train.txt"

FAST = dict(n_factors=32, n_epochs=30, batch_size=256, lr=1e-2, reg=0.1, update_interval=20, device="cpu",
            verbose=0, random_state=0)


@pytest.fixture(scope="module")
def split():
    data = make_low_rank_interactions(n_users=500, n_items=400, rank=8, interactions_per_user=20, random_state=0)
    return data.split_by_user(test_size=0.2, random_state=0)


@pytest.fixture(scope="module")
def tiny():
    return make_low_rank_interactions(n_users=40, n_items=30, rank=3, interactions_per_user=6, random_state=1)


def _popularity_recall(train, test):
    csr = train.to_csr()
    counts = np.asarray(csr.sum(0)).ravel().astype(np.float32)
    users = np.ones((csr.shape[0], 1), np.float32)
    return evaluate_ranking(users, counts[:, None], train, test, ks=(20,))["recall@20"]


# -- recovery of planted preferences ------------------------------------------------------------


@pytest.fixture(scope="module")
def mf_fits(split):
    train, test = split
    torch.set_num_threads(1)
    dense = DSLRecommender(density=1.0, **FAST).fit(train, eval_set=test)
    table = DSLRecommender(density=0.5, **FAST).fit(train, eval_set=test)
    static = DSLRecommender(density=0.5, fix=True, **FAST).fit(train)
    return dense, table, static


def test_mf_sparse_recovers_preferences_nearly_as_well_as_dense(split, mf_fits):
    train, test = split
    dense, sparse, static = mf_fits
    r_dense = dense.evaluate(test)["recall@20"]
    r_sparse = sparse.evaluate(test)["recall@20"]
    pop = _popularity_recall(train, test)
    assert r_sparse >= 0.9 * r_dense, (r_sparse, r_dense)
    assert r_sparse > 2 * pop, (r_sparse, pop)
    assert r_sparse > 1.2 * static.evaluate(test)["recall@20"]     # moving the pattern matters
    assert sparse.history_[-1]["recall@20"] == pytest.approx(r_sparse)
    assert sparse.n_updates_ > 0
    # budgets are exact at the end, and the stored tables are the only weights
    budget = round(0.5 * 500 * 32) + round(0.5 * 400 * 32)
    assert sparse.n_active_parameters_ == budget == sparse.density_report_["total"]["active"]
    assert sparse.n_parameters_ == dense.n_parameters_ == dense.n_active_parameters_ == 900 * 32
    assert all(h["n_active"] == budget for h in sparse.history_)
    for table in (sparse.model_.user, sparse.model_.item):
        assert isinstance(table, SparseTable)
        idx = table.indices.long()
        assert idx.numel() == table.values.numel() and torch.unique(idx).numel() == idx.numel()
    n_params = sum(p.numel() for p in sparse.model_.parameters())
    assert n_params == budget                      # no dense table anywhere in the model
    assert ((sparse.user_embeddings_ != 0).sum() + (sparse.item_embeddings_ != 0).sum()) <= budget


def test_masked_mode_keeps_budget_and_learns(split, mf_fits):
    train, test = split
    dense = mf_fits[0]
    rec = DSLRecommender(density=0.5, sparse_storage=False, **FAST).fit(train)
    user, item = rec.model_.user.weight, rec.model_.item.weight
    assert int((user != 0).sum()) <= round(0.5 * user.numel())
    assert int((item != 0).sum()) <= round(0.5 * item.numel())
    assert rec.n_active_parameters_ == round(0.5 * user.numel()) + round(0.5 * item.numel())
    assert rec.evaluate(test)["recall@20"] >= 0.85 * dense.evaluate(test)["recall@20"]
    assert rec.n_updates_ > 0


def test_lightgcn_sparse_learns(split):
    train, test = split
    params = dict(FAST, n_epochs=15, n_layers=2, reg=1e-2)
    sparse = DSLRecommender(backbone="lightgcn", density=0.5, **params).fit(train)
    dense = DSLRecommender(backbone="lightgcn", density=1.0, **params).fit(train)
    r_sparse, r_dense = sparse.evaluate(test)["recall@20"], dense.evaluate(test)["recall@20"]
    assert r_sparse > 2 * _popularity_recall(train, test)
    assert r_sparse >= 0.9 * r_dense, (r_sparse, r_dense)


# -- the training machinery ----------------------------------------------------------------------


def test_fix_keeps_the_random_pattern_and_global_redistribution_keeps_total(tiny):
    params = dict(n_factors=8, batch_size=32, update_interval=3, device="cpu", verbose=0, random_state=3)
    short = DSLRecommender(fix=True, n_epochs=1, **params).fit(tiny)
    long = DSLRecommender(fix=True, n_epochs=4, **params).fit(tiny)
    moving = DSLRecommender(fix=False, n_epochs=4, **params).fit(tiny)
    assert long.n_updates_ == 0 and moving.n_updates_ > 0
    assert torch.equal(short.model_.user.indices, long.model_.user.indices)
    assert not torch.equal(short.model_.user.indices, moving.model_.user.indices)
    joint = DSLRecommender(redistribution="global", n_epochs=4, **params).fit(tiny)
    total = round(0.5 * 40 * 8) + round(0.5 * 30 * 8)
    assert joint.n_active_parameters_ == total
    assert all(h["n_active"] == total for h in joint.history_)
    assert joint.n_updates_ > 0
    report = joint.density_report_
    assert report["user"]["active"] != round(0.5 * 40 * 8)          # the split moved ...
    assert report["user"]["active"] + report["item"]["active"] == total   # ... the total did not
    assert joint.model_.user.budget == report["user"]["active"]
    loaded = pickle.loads(pickle.dumps(joint))
    assert np.array_equal(loaded.recommend([0, 1], k=5), joint.recommend([0, 1], k=5))
    masked = DSLRecommender(redistribution="global", sparse_storage=False, n_epochs=4, **params).fit(tiny)
    assert masked.n_active_parameters_ == total
    assert masked.density_report_["user"]["active"] != round(0.5 * 40 * 8)
    for options in (dict(grow="random"), dict(regrow_init="random"), dict(regrow_init="gradient"),
                    dict(regrow_init="gradient", redistribution="global")):
        other = DSLRecommender(n_epochs=2, **options, **params).fit(tiny)
        assert other.n_updates_ > 0 and other.n_active_parameters_ == total, options
        for table in (other.model_.user, other.model_.item):
            idx = table.indices.long()
            assert torch.unique(idx).numel() == idx.numel() == table.values.numel()


def test_lightgcn_table_gradient_for_growth_equals_dense_reference(tiny):
    train = tiny.to_csr()
    adj = normalized_adjacency(sp.csr_matrix(train))
    net = _DSLNet(40, 30, 6, "lightgcn", 2, "table", 0.5, 0.1, torch.Generator().manual_seed(0), "cpu",
                  torch.float32)
    u, i, j = torch.tensor([0, 5, 5, 39]), torch.tensor([1, 2, 3, 29]), torch.tensor([4, 0, 7, 8])
    for t in (net.user, net.item):
        t.record_gradients(True)
    net.loss(u, i, j, 1e-2, adj).backward()
    ego = torch.cat([net.user.to_dense(), net.item.to_dense()]).detach().requires_grad_(True)
    dense_adj = adj.to_dense()
    layers, x = ego, ego
    for _ in range(2):
        x = dense_adj @ x
        layers = layers + x
    final = layers / 3
    fu, fi, fj = final[u], final[40 + i], final[40 + j]
    loss = torch.nn.functional.softplus((fu * fj).sum(1) - (fu * fi).sum(1)).mean()
    loss = loss + 1e-2 * (ego[u].pow(2).sum() + ego[40 + i].pow(2).sum() + ego[40 + j].pow(2).sum()) / 2 / 4
    loss.backward()
    got_u = torch.cat([b for _, b in net.user.dense_gradient_chunks(7)])
    got_i = torch.cat([b for _, b in net.item.dense_gradient_chunks(7)])
    # growth reads the inactive entries only: the chunks hold the gradient there and zero at active ones
    assert torch.allclose(got_u, ego.grad[:40] * ~net.user.active_mask(), atol=1e-6)
    assert torch.allclose(got_i, ego.grad[40:] * ~net.item.active_mask(), atol=1e-6)


def _layer_mean_reference(dense_adj, x, n_layers):
    layers, current = x, x
    for _ in range(n_layers):
        current = dense_adj @ current
        layers = layers + current
    return layers / (n_layers + 1)


@pytest.mark.parametrize("n_layers", [0, 1, 2, 3, 4])
def test_propagation_is_the_layer_mean_and_its_gradient(tiny, n_layers):
    adj = normalized_adjacency(sp.csr_matrix(tiny.to_csr()), dtype="float64")
    assert adj.col_indices().dtype == torch.int32
    x = torch.randn(70, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(n_layers))
    expected = _layer_mean_reference(adj.to_dense(), x, n_layers)
    assert torch.allclose(_LightGCNPropagation.apply(x, adj, n_layers), expected, atol=1e-12)
    owned = x.clone()     # total may be x itself: the sum then overwrites it
    assert torch.allclose(mean_of_layers(adj, owned, n_layers, owned), expected, atol=1e-12)
    assert torch.autograd.gradcheck(lambda e: _LightGCNPropagation.apply(e, adj, n_layers),
                                    (x.clone().requires_grad_(True),))


def test_squared_row_norms_and_gradient():
    x = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(_SquaredRowNorms.apply(x), (x * x).sum(1), atol=1e-12)
    assert torch.autograd.gradcheck(_SquaredRowNorms.apply, (x,))


def test_lightgcn_dense_loss_gradient_equals_layerwise_reference(tiny):
    adj = normalized_adjacency(sp.csr_matrix(tiny.to_csr()), dtype="float64")
    net = _DSLNet(40, 30, 6, "lightgcn", 3, "dense", 1.0, 0.1, torch.Generator().manual_seed(1), "cpu",
                  torch.float64)
    u, i, j = torch.tensor([0, 5, 5, 39, 5]), torch.tensor([1, 2, 3, 29, 2]), torch.tensor([4, 0, 7, 8, 9])
    net.loss(u, i, j, 1e-2, adj).backward()
    ego = torch.cat([net.user.weight, net.item.weight]).detach().requires_grad_(True)
    final = _layer_mean_reference(adj.to_dense(), ego, 3)
    fu, fi, fj = final[u], final[40 + i], final[40 + j]
    loss = torch.nn.functional.softplus((fu * fj).sum(1) - (fu * fi).sum(1)).mean()
    loss = loss + 1e-2 * (ego[u].pow(2).sum() + ego[40 + i].pow(2).sum() + ego[40 + j].pow(2).sum()) / 2 / 5
    loss.backward()
    assert torch.allclose(net.user.weight.grad, ego.grad[:40], atol=1e-12)
    assert torch.allclose(net.item.weight.grad, ego.grad[40:], atol=1e-12)


def test_normalized_adjacency_matches_dense_formula(tiny):
    r = tiny.to_csr().toarray()
    a = np.block([[np.zeros((40, 40)), r], [r.T, np.zeros((30, 30))]])
    deg = a.sum(1)
    inv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    expected = inv[:, None] * a * inv[None, :]
    got = normalized_adjacency(sp.csr_matrix(r), dtype="float64").to_dense().numpy()
    assert np.allclose(got, expected)


def test_negative_sampling_avoids_training_items():
    train = sp.csr_matrix(np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 1], [1, 1, 1, 1, 0]], dtype=np.float32))
    users = np.repeat([0, 1, 2], 400)
    neg = sample_negatives(users, train, np.random.RandomState(0))
    assert not train[users, neg].any()
    assert set(neg[users == 0]) == {3, 4} and set(neg[users == 2]) == {4}
    with pytest.raises(ValueError, match="every item"):
        sample_negatives(np.array([0]), sp.csr_matrix(np.ones((1, 3))), np.random.RandomState(0))


def test_negative_sampling_draws_do_not_depend_on_the_chunks(monkeypatch):
    import recsys.dsl as dsl

    train = make_low_rank_interactions(n_users=50, n_items=12, rank=2, interactions_per_user=6,
                                       random_state=0).to_csr()
    users = np.random.RandomState(1).randint(0, 50, 3000)
    whole = sample_negatives(users, train, np.random.RandomState(0))
    monkeypatch.setattr(dsl, "_NEGATIVE_CHUNK", 7)
    chunked = sample_negatives(users, train, np.random.RandomState(0))
    assert np.array_equal(whole, chunked) and not np.asarray(train[users, chunked]).any()
    # the draws are those of plain rejection sampling: all at once, then the rejected ones in order
    rng = np.random.RandomState(0)
    reference = rng.randint(0, 12, size=len(users)).astype(np.int64)
    seen = np.asarray(train[users, reference]).ravel() > 0
    while seen.any():
        redo = np.flatnonzero(seen)
        reference[redo] = rng.randint(0, 12, size=len(redo))
        seen[redo] = np.asarray(train[users[redo], reference[redo]]).ravel() > 0
    assert np.array_equal(reference, whole)


def test_recommend_excludes_seen_and_evaluate_keys(tiny):
    rec = DSLRecommender(n_factors=8, n_epochs=2, batch_size=32, device="cpu", verbose=0, random_state=0).fit(tiny)
    top = rec.recommend(np.arange(40), k=10)
    assert top.shape == (40, 10) and top.dtype.kind == "i"
    seen = tiny.to_csr()
    for u in range(40):
        assert not seen[u, top[u]].toarray().any()
    scores = rec.scores([3])[0]
    masked = np.where(seen[3].toarray().ravel() > 0, -np.inf, scores)
    assert set(top[3].tolist()) == set(np.argsort(-masked)[:10].tolist())
    assert isinstance(rec.recommend(torch.tensor([1, 2]), k=3), torch.Tensor)
    result = rec.evaluate(tiny, k=(5, 10))
    assert {"recall@5", "ndcg@5", "recall@10", "ndcg@10"} <= set(result)
    assert {"epoch", "loss", "seconds", "n_active"} <= set(rec.history_[0])


def test_pickle_round_trip_and_sklearn_api(tiny):
    rec = DSLRecommender(backbone="lightgcn", n_factors=8, n_layers=1, n_epochs=2, batch_size=32,
                         update_interval=2, device="cpu", verbose=0, random_state=0).fit(tiny)
    loaded = pickle.loads(pickle.dumps(rec))
    assert np.array_equal(loaded.recommend([0, 5, 7], k=5), rec.recommend([0, 5, 7], k=5))
    assert torch.equal(loaded.model_.item.to_dense(), rec.model_.item.to_dense())
    masked = DSLRecommender(sparse_storage=False, n_factors=8, n_epochs=1, batch_size=32, device="cpu", verbose=0,
                            random_state=0).fit(tiny)
    assert np.array_equal(pickle.loads(pickle.dumps(masked)).recommend([1], k=4), masked.recommend([1], k=4))
    params = rec.get_params()
    assert params["backbone"] == "lightgcn" and params["density"] == 0.5
    fresh = clone(rec)
    assert fresh.get_params() == params and not hasattr(fresh, "model_")
    assert rec.score(tiny) == rec.evaluate(tiny)["recall@20"]
    again = clone(rec).fit(tiny)
    assert np.array_equal(again.recommend([0, 5], k=5), rec.recommend([0, 5], k=5))   # same seed, same model


def test_bad_input_raises_clear_errors(tiny):
    base = dict(n_factors=4, n_epochs=1, device="cpu", verbose=0)
    with pytest.raises(ValueError):
        DSLRecommender(**base).fit(np.array([[0, 1], [-1, 2]]))
    with pytest.raises(ValueError):
        DSLRecommender(**base).fit(np.zeros((0, 2), dtype=np.int64))
    for density in (0, 0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(ValueError, match="density"):
            DSLRecommender(density=density, **base).fit(tiny)
    with pytest.raises(ValueError, match="backbone"):
        DSLRecommender(backbone="svd", **base).fit(tiny)
    with pytest.raises(ValueError, match="redistribution"):
        DSLRecommender(redistribution="local", **base).fit(tiny)
    with pytest.raises(ValueError, match="n_factors"):
        DSLRecommender(n_factors=0, **{k: v for k, v in base.items() if k != "n_factors"}).fit(tiny)
    rec = DSLRecommender(**base).fit(tiny)
    with pytest.raises(ValueError, match="users"):
        rec.recommend([40])
    with pytest.raises(ValueError, match="The 'k' parameter of DSLRecommender.recommend must be"):
        rec.recommend([0], k=0)


def test_training_memory_falls_with_density(tiny):
    params = dict(n_factors=16, n_epochs=1, batch_size=64, device="cpu", verbose=0, random_state=0)
    sizes = {d: DSLRecommender(density=d, **params).fit(tiny).training_state_bytes_ for d in (0.25, 0.5, 1.0)}
    n = 70 * 16
    assert sizes[1.0] == 16 * n + 8                          # weights, gradients, two Adam moments; steps
    assert sizes[0.25] < sizes[0.5] < 0.7 * sizes[1.0]
    assert sizes[0.5] == 20 * round(0.5 * 40 * 16) + 20 * round(0.5 * 30 * 16) + 8 * (41 + 31) + 8  # + indptr, step
    masked = DSLRecommender(density=0.5, sparse_storage=False, **params).fit(tiny).training_state_bytes_
    assert masked > sizes[1.0] > sizes[0.5]                  # masks cost memory; only storage mode saves it


def test_negatives_and_evaluation_schedule(tiny):
    rec = DSLRecommender(n_factors=8, n_epochs=3, batch_size=40, n_negatives=3, update_interval=5, eval_every=1,
                         device="cpu", verbose=0, random_state=0).fit(tiny, eval_set=tiny)
    steps = 3 * -(-3 * len(tiny) // 40)
    assert rec.n_updates_ == (steps - 1) // 5   # never on the last step
    assert all("recall@20" in h and "ndcg@20" in h and np.isfinite(h["loss"]) for h in rec.history_)
    rec = DSLRecommender(n_factors=8, n_epochs=3, eval_every=2, device="cpu", verbose=0).fit(tiny, eval_set=tiny)
    assert ["recall@20" in h for h in rec.history_] == [False, True, True]


def test_default_update_interval_is_one_update_an_epoch_but_not_after_the_last(tiny):
    params = dict(n_factors=8, density=0.5, batch_size=32, device="cpu", verbose=0, random_state=0)
    steps_per_epoch = -(-len(tiny) // 32)
    for epochs in (1, 2, 4):
        rec = DSLRecommender(n_epochs=epochs, **params).fit(tiny)
        assert rec.n_updates_ == epochs - 1
        assert rec.n_active_parameters_ == round(0.5 * 40 * 8) + round(0.5 * 30 * 8)
    explicit = DSLRecommender(n_epochs=4, update_interval=steps_per_epoch, **params).fit(tiny)
    assert np.array_equal(explicit.user_embeddings_, rec.user_embeddings_)   # None is exactly one epoch's steps
    for bad in (0, -3, 2.5, True, "epoch"):
        with pytest.raises(ValueError, match="update_interval"):
            DSLRecommender(n_epochs=1, update_interval=bad, **params).fit(tiny)


@pytest.mark.parametrize("backbone, n_epochs, every", [("mf", 30, 3), ("lightgcn", 20, 1), ("lightgcn", 60, 3)])
def test_update_interval_auto_is_about_ten_updates_for_mf_and_twenty_for_lightgcn(tiny, backbone, n_epochs, every):
    params = dict(backbone=backbone, n_factors=8, n_layers=1, density=0.5, n_epochs=n_epochs, batch_size=64,
                  device="cpu", verbose=0, random_state=0)
    steps_per_epoch = -(-len(tiny) // 64)
    auto = DSLRecommender(**params).fit(tiny)
    assert auto.n_updates_ == n_epochs // every - 1   # never on the last step
    explicit = DSLRecommender(update_interval=every * steps_per_epoch, **params).fit(tiny)
    assert np.array_equal(auto.user_embeddings_, explicit.user_embeddings_)
    assert DSLRecommender(update_interval=None, **params).fit(tiny).n_updates_ == n_epochs - 1


@pytest.mark.parametrize("backbone, resolved", [("mf", "gradient"), ("lightgcn", "zero")])
def test_regrow_moments_auto_resolves_by_backbone(tiny, backbone, resolved):
    params = dict(backbone=backbone, n_factors=8, n_layers=2, density=0.5, n_epochs=3, batch_size=32,
                  device="cpu", verbose=0, random_state=0)
    fits = {m: DSLRecommender(regrow_moments=m, **params).fit(tiny).user_embeddings_
            for m in ("auto", "zero", "gradient")}
    other = "zero" if resolved == "gradient" else "gradient"
    assert np.array_equal(fits["auto"], fits[resolved])
    assert not np.allclose(fits["auto"], fits[other])        # the choice changes training
    with pytest.raises(ValueError, match="regrow_moments"):
        DSLRecommender(regrow_moments="window", **params).fit(tiny)


@pytest.mark.parametrize("backbone, resolved", [("mf", 0.0), ("lightgcn", 1.0)])
def test_grad_decay_auto_resolves_by_backbone(tiny, backbone, resolved):
    params = dict(backbone=backbone, n_factors=8, n_layers=2, density=0.5, n_epochs=4, batch_size=32,
                  update_interval=2, device="cpu", verbose=0, random_state=0)
    fits = {d: DSLRecommender(grad_decay=d, **params).fit(tiny).user_embeddings_ for d in ("auto", 0.0, 1.0)}
    assert np.array_equal(fits["auto"], fits[resolved])
    assert not np.allclose(fits["auto"], fits[1.0 - resolved])   # the carried gradient changes what grows
    for bad in ("window", -0.5, 2, True):
        with pytest.raises(ValueError, match="grad_decay"):
            DSLRecommender(grad_decay=bad, **params).fit(tiny)


def test_dense_density_trains_plain_embeddings(tiny):
    rec = DSLRecommender(density=1.0, n_factors=8, n_epochs=1, device="cpu", verbose=0, random_state=0).fit(tiny)
    assert isinstance(rec.model_.user, torch.nn.Embedding)
    assert rec.n_active_parameters_ == rec.n_parameters_ == 70 * 8 and rec.n_updates_ == 0


@pytest.mark.slow
@pytest.mark.skipif(not GOWALLA.exists(), reason="Gowalla data not present")
def test_gowalla_one_epoch_keeps_budget():
    from recsys.interactions import read_lightgcn

    train = read_lightgcn(GOWALLA)
    rec = DSLRecommender(n_factors=64, density=0.5, n_epochs=1, batch_size=2048, update_interval=100, device="cpu",
                         verbose=0, random_state=0).fit(train)
    assert rec.n_active_parameters_ == round(0.5 * train.n_users * 64) + round(0.5 * train.n_items * 64)
    assert rec.n_updates_ == (-(-len(train) // 2048) - 1) // 100
    assert rec.training_state_bytes_ < 0.65 * 16 * rec.n_parameters_


def test_cosine_learning_rate_schedule_follows_the_formula():
    data = make_low_rank_interactions(n_users=40, n_items=30, rank=2, interactions_per_user=5, random_state=0)
    model = DSLRecommender(n_factors=4, density=0.5, n_epochs=5, lr=1e-2, lr_schedule="cosine", min_lr=1e-4,
                           update_interval=2, random_state=0, device="cpu", verbose=0).fit(data)
    expected = [1e-4 + (1e-2 - 1e-4) * (1 + np.cos(np.pi * e / 5)) / 2 for e in range(5)]
    np.testing.assert_allclose([h["lr"] for h in model.history_], expected, rtol=1e-9)
    with pytest.raises(ValueError, match="lr_schedule"):
        DSLRecommender(lr_schedule="step").fit(data)


def test_row_balanced_recommender_keeps_every_row_at_its_share():
    data = make_low_rank_interactions(n_users=60, n_items=40, rank=3, interactions_per_user=8, random_state=0)
    model = DSLRecommender(n_factors=8, density=0.25, n_epochs=4, batch_size=64, lr=1e-2, update_interval=3,
                           balance="row", random_state=0, device="cpu", verbose=0).fit(data)
    assert model.n_updates_ > 0 and model.n_active_parameters_ == (60 + 40) * 2
    for table in (model.model_.user, model.model_.item):
        assert torch.equal(table.active_mask().sum(1), torch.full((table.n_rows,), 2))
    for bad in (dict(balance="row", sparse_storage=False), dict(balance="row", redistribution="global"),
                dict(balance="rows"), dict(grad_window=0)):
        with pytest.raises(ValueError, match="balance|grad_window"):
            DSLRecommender(**bad).fit(data)


@pytest.mark.parametrize("backbone", ["lightgcn", "mf"])
def test_degree_balanced_recommender_gives_busy_rows_more_and_keeps_each_rows_count(backbone):
    """balance='degree': each row's count is set from its training degree (degree_row_counts) at the
    row-balanced total, and prune/grow keeps every row at its own count through training."""
    data = make_low_rank_interactions(n_users=60, n_items=40, rank=3, interactions_per_user=8, random_state=0)
    model = DSLRecommender(backbone=backbone, n_factors=8, n_layers=2, density=0.25, n_epochs=4, batch_size=64,
                           lr=1e-2, update_interval=3, balance="degree", random_state=0, device="cpu",
                           verbose=0).fit(data)
    assert model.n_updates_ > 0 and model.n_active_parameters_ == (60 + 40) * 2
    train = model.train_
    for table, degrees in ((model.model_.user, train.getnnz(axis=1)), (model.model_.item, train.getnnz(axis=0))):
        expected = degree_row_counts(degrees, 8, 0.25, head_fraction=0.25, head_ratio=1.5)
        assert len(np.unique(expected)) > 1
        assert np.array_equal(table.active_mask().sum(1).numpy(), expected)
        busiest = np.argsort(-degrees, kind="stable")[: -(-table.n_rows // 4)]
        assert np.all(expected[busiest] == 3)
    for bad in (dict(balance="degree", sparse_storage=False), dict(balance="degree", redistribution="global")):
        with pytest.raises(ValueError, match="balance"):
            DSLRecommender(**bad).fit(data)


@pytest.mark.parametrize("backbone, settings, resolved", [
    ("lightgcn", {}, "row"), ("mf", {}, None), ("lightgcn", {"redistribution": "global"}, None),
    ("lightgcn", {"sparse_storage": False}, None), ("lightgcn", {"fix": True}, "row")])
def test_balance_auto_is_row_balanced_for_lightgcn_where_the_settings_allow(tiny, backbone, settings, resolved):
    params = dict(backbone=backbone, n_factors=8, n_layers=2, density=0.5, n_epochs=3, batch_size=32,
                  update_interval=2, device="cpu", verbose=0, random_state=0, **settings)
    auto = DSLRecommender(**params).fit(tiny)
    assert np.array_equal(auto.user_embeddings_, DSLRecommender(balance=resolved, **params).fit(tiny).user_embeddings_)
    if resolved == "row":
        for table in (auto.model_.user, auto.model_.item):
            assert torch.equal(table.active_mask().sum(1), torch.full((table.n_rows,), 4))
        other = DSLRecommender(balance=None, **params).fit(tiny).user_embeddings_
        assert not np.allclose(auto.user_embeddings_, other)   # one budget per table trains differently
    with pytest.raises(ValueError, match="balance"):
        DSLRecommender(balance=True, **params).fit(tiny)
