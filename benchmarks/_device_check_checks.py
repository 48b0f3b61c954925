"""The agreement checks of ``device_check``: each fits one estimator on small generated data on
``device`` with ``seed`` (data and model) and returns one score, comparable across devices."""

from __future__ import annotations

import numpy as np


def funbat(device: str, seed: int) -> float:
    """Test RMSE of a functional Tucker fit."""
    from tensorkit import FunBaT, make_functional_tucker

    data = make_functional_tucker(n_entries=1500, rank=2, noise=0.1, random_state=seed)
    model = FunBaT(rank=2, n_epochs=30, random_state=seed, device=device, verbose=0)
    model.fit(data.X[:1200], data.y[:1200])
    return float(np.sqrt(np.mean((model.predict(data.X[1200:]) - data.y[1200:]) ** 2)))


def kronecker_sbl(device: str, seed: int, method: str) -> float:
    """NMSE (dB) of a Kronecker SBL recovery."""
    from tensorkit import KroneckerSBL, make_kronecker_problem, nmse_db

    problem = make_kronecker_problem(shapes=((32, 64), (32, 64)), support_sizes=6, snr_db=20, random_state=seed)
    model = KroneckerSBL(method=method, random_state=seed, device=device, verbose=0).fit(problem.factors, problem.y)
    return float(nmse_db(model.coef_, problem.coef))


def flora(device: str, seed: int) -> float:
    """Final training loss of a FLoRA adapter on a conv net; merging must not change the outputs."""
    import torch
    import torch.nn as nn

    from tensorkit import FLoRAConfig, inject_flora, merge_and_unload

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 14 * 14, 4))
    inputs, targets = torch.randn(64, 3, 16, 16), torch.randn(64, 4)
    model = inject_flora(model, FLoRAConfig(ranks=4, target_modules=["0", "3"])).to(device)
    inputs, targets = inputs.to(device), targets.to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        adapted = model(inputs)
        merged = merge_and_unload(model)(inputs)
    gap = float((adapted - merged).abs().max())
    if gap > 1e-4:
        raise AssertionError(f"merged outputs differ from the adapter's by {gap:.2e}")
    return float(loss.detach())


def fastrp(device: str, seed: int) -> float:
    """The sum of the embedding's first 5 rows: the same projection on every device."""
    from graphkit import FastRP, make_attributed_sbm

    data = make_attributed_sbm(n_nodes=2000, n_clusters=4, random_state=seed)
    embedding = FastRP(n_components=64, random_state=seed, device=device).fit(data.graph).embedding_
    return float(np.asarray(embedding)[:5].sum())


def pamc(device: str, seed: int, loss: str) -> float:
    """Clustering accuracy of PamC on an attributed block model."""
    from graphkit import PamC, make_attributed_sbm
    from graphkit.metrics import clustering_accuracy

    data = make_attributed_sbm(n_nodes=600, n_clusters=3, n_features=16, feature_signal=3.0, random_state=seed)
    model = PamC(n_clusters=3, hidden=(64, 64), n_z=8, loss=loss, order=2, pretrain_epochs=10, n_epochs=60,
                 random_state=seed, device=device, verbose=0)
    return float(clustering_accuracy(data.labels, model.fit_predict(data.features, graph=data.graph)))


def manifold_clustering(device: str, seed: int) -> float:
    """Clustering accuracy of ManifoldClustering on a union of curves."""
    from graphkit import ManifoldClustering, make_union_of_manifolds
    from graphkit.metrics import clustering_accuracy

    data = make_union_of_manifolds(n_samples=300, n_manifolds=3, n_features=50, kind="curves", noise=0.02,
                                   random_state=seed)
    model = ManifoldClustering(n_clusters=3, n_components=16, hidden=128, eta=0.3, n_epochs=40, warmup_epochs=10,
                               batch_size=100, random_state=seed, device=device, verbose=0)
    return float(clustering_accuracy(data.labels, model.fit_predict(data.X)))


def dsl(device: str, seed: int, backbone: str) -> float:
    """Recall@20 of a sparse DSL recommender on low-rank interactions."""
    from recsys import DSLRecommender
    from recsys.data import make_low_rank_interactions

    data = make_low_rank_interactions(n_users=600, n_items=400, rank=8, interactions_per_user=20, random_state=seed)
    train, test = data.split_by_user(test_size=0.2, random_state=seed)
    model = DSLRecommender(backbone=backbone, n_factors=32, density=0.5, n_epochs=15, batch_size=512, lr=1e-2,
                           update_interval=20, random_state=seed, device=device, verbose=0).fit(train)
    return float(model.evaluate(test, k=(20,))["recall@20"])


def ctr(device: str, seed: int) -> float:
    """Test AUC of a CTR classifier after 2x compression."""
    from sklearn.metrics import roc_auc_score

    from recsys import CTRClassifier
    from recsys.ctr.compress import compress
    from recsys.data import make_criteo_like

    frame = make_criteo_like(n_samples=20000, n_dense=4, n_categorical=8, random_state=seed)
    X, y = frame.drop(columns="label"), frame["label"].to_numpy()
    clf = CTRClassifier(embed_dim=8, hidden=(64, 64), max_epochs=3, random_state=seed, device=device)
    clf.fit(X[:16000], y[:16000])
    small = compress(clf, X[:4000], ratio=2.0)
    return float(roc_auc_score(y[16000:], small.predict_proba(X[16000:])[:, 1]))
