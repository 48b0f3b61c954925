"""PamC and ManifoldClustering take a PyTorch Geometric ``Data`` (features ``x``, graph ``edge_index``)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit import ManifoldClustering, PamC, make_attributed_sbm, make_union_of_manifolds

pyg_data = pytest.importorskip("torch_geometric.data")

PAMC = dict(hidden=(16, 16), n_z=4, pretrain_epochs=3, n_epochs=5, verbose=0, device="cpu")
MLC = dict(n_clusters=3, n_components=4, hidden=16, n_epochs=2, warmup_epochs=1, batch_size=60, n_init=2,
           verbose=0, device="cpu")


def attributed(seed=0, weighted=False):
    """Features, the adjacency as SciPy (the reference input) and the same graph as a PyG ``Data``."""
    data = make_attributed_sbm(n_nodes=60, n_clusters=3, avg_degree=6, n_features=5, feature_signal=3.0,
                               random_state=seed)
    adjacency = data.graph.adjacency.tocoo()
    weights = None
    if weighted:
        upper = sp.triu(adjacency, k=1).tocoo()
        values = np.random.default_rng(seed).uniform(0.5, 3.0, upper.nnz)
        adjacency = sp.coo_matrix((np.r_[values, values], (np.r_[upper.row, upper.col], np.r_[upper.col, upper.row])),
                                  shape=adjacency.shape)
        weights = torch.tensor(adjacency.data)
    edge_index = torch.tensor(np.vstack([adjacency.row, adjacency.col]), dtype=torch.long)
    x = torch.tensor(data.features, dtype=torch.float32)
    return data.features.astype(np.float32), adjacency.tocsr(), pyg_data.Data(x=x, edge_index=edge_index,
                                                                                edge_weight=weights)


@pytest.mark.parametrize("encoder", ["mlp", "gcn"])
def test_pamc_fit_on_data_equals_features_and_graph_given_apart(encoder):
    features, adjacency, data = attributed()
    reference = PamC(n_clusters=3, encoder=encoder, random_state=0, **PAMC).fit(features, graph=adjacency)
    fitted = PamC(n_clusters=3, encoder=encoder, random_state=0, **PAMC).fit(data)
    np.testing.assert_array_equal(fitted.embedding_, reference.embedding_)
    np.testing.assert_array_equal(fitted.labels_, reference.labels_)


def test_pamc_reads_the_edge_weights_of_a_data():
    features, weighted_adjacency, data = attributed(seed=1, weighted=True)
    reference = PamC(n_clusters=3, encoder="gcn", random_state=0, **PAMC).fit(features, graph=weighted_adjacency)
    unweighted = PamC(n_clusters=3, encoder="gcn", random_state=0, **PAMC).fit(
        features, graph=(weighted_adjacency > 0).astype(float))
    fitted = PamC(n_clusters=3, encoder="gcn", random_state=0, **PAMC).fit(data)
    np.testing.assert_array_equal(fitted.embedding_, reference.embedding_)
    assert not np.array_equal(fitted.embedding_, unweighted.embedding_)


def test_pamc_fit_predict_and_predict_on_data_follow_its_features():
    features, adjacency, data = attributed(seed=2)
    labels = PamC(n_clusters=3, encoder="gcn", random_state=0, **PAMC).fit_predict(data)
    assert isinstance(labels, torch.Tensor)  # data.x is a tensor, so the labels are one
    reference = PamC(n_clusters=3, encoder="gcn", random_state=0, **PAMC).fit(features, graph=adjacency)
    np.testing.assert_array_equal(labels.numpy(), reference.labels_)
    np.testing.assert_array_equal(reference.predict(data).numpy(), reference.predict(features, graph=adjacency))


def test_pamc_refuses_a_data_without_features_or_with_a_second_graph():
    _, adjacency, data = attributed()
    no_x = "PamC needs node features, but the PyTorch Geometric Data given as X has no x"
    with pytest.raises(ValueError, match=no_x):
        PamC(n_clusters=3, **PAMC).fit(pyg_data.Data(edge_index=data.edge_index, num_nodes=60))
    with pytest.raises(ValueError, match="PamC: graph was given beside a PyTorch Geometric Data"):
        PamC(n_clusters=3, **PAMC).fit(data, graph=adjacency)


def test_manifold_clustering_on_data_equals_its_features():
    manifolds = make_union_of_manifolds(n_samples=60, n_manifolds=3, n_features=6, dim=2, random_state=0)
    X = manifolds.X.astype(np.float32)
    edge_index = torch.tensor([[0, 1], [1, 0]])
    data = pyg_data.Data(x=torch.tensor(X), edge_index=edge_index)
    reference = ManifoldClustering(random_state=0, **MLC).fit(X)
    fitted = ManifoldClustering(random_state=0, **MLC).fit(data)
    np.testing.assert_array_equal(fitted.embedding_, reference.embedding_)
    np.testing.assert_array_equal(fitted.labels_, reference.labels_)
    np.testing.assert_array_equal(fitted.transform(data).numpy(), reference.transform(X))
    np.testing.assert_array_equal(fitted.predict(data).numpy(), reference.predict(X))
    np.testing.assert_array_equal(ManifoldClustering(random_state=0, **MLC).fit_transform(data).numpy(),
                                  reference.embedding_)
    np.testing.assert_array_equal(ManifoldClustering(random_state=0, **MLC).fit_predict(data).numpy(),
                                  reference.labels_)


def test_manifold_clustering_refuses_a_data_without_features():
    data = pyg_data.Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=2)
    with pytest.raises(ValueError, match="ManifoldClustering needs node features"):
        ManifoldClustering(**MLC).fit(data)
