"""The shared graphs of the FastRP study, their node splits, and the classifier that scores an
embedding on them (``benchmarks/fastrp_study.py``)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .harness import Unavailable
from .paths import shared_data

QUICK_NODES = 240


def load_graph(name: str):
    """A loader ``load(quick)`` of the graph ``name``: its adjacency (CSR, float64), the labelled
    nodes and their 0/1 label matrix."""
    readers = {"BlogCatalog": _blogcatalog, "DBLP": _dblp, "Cora": _planetoid("cora"),
               "Citeseer": _planetoid("citeseer"), "PubMed": _planetoid("pubmed")}

    def load(quick: bool) -> dict:
        if quick:
            return _block_model()
        try:
            adjacency, labelled, targets = readers[name]()
        except FileNotFoundError as exc:
            raise Unavailable(f"{name} is not in ../shared/data/graphs ({exc})") from None
        return {"adjacency": sp.csr_matrix(adjacency, dtype=np.float64), "labelled": labelled, "targets": targets}

    return load


def _blogcatalog():
    import scipy.io

    contents = scipy.io.loadmat(shared_data("graphs", "blogcatalog", "blogcatalog.mat"))
    targets = sp.csr_matrix(contents["group"]).toarray().astype(np.int8)
    return contents["network"], np.arange(targets.shape[0]), targets


def _dblp():
    import scipy.io

    contents = scipy.io.loadmat(shared_data("graphs", "harp-dblp", "dblp.mat"))
    targets = sp.csr_matrix(contents["F"]).toarray().astype(np.int8)
    return contents["A"], np.arange(targets.shape[0]), targets


def _planetoid(name: str):
    def read():
        folder = shared_data("graphs", name)
        labels = np.loadtxt(folder / f"{name}.labels", dtype=np.int64, ndmin=2)
        edges = np.loadtxt(folder / f"{name}.edgelist", dtype=np.int64, ndmin=2)
        n = int(max(labels[:, 0].max(), edges.max())) + 1
        adjacency = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
        adjacency = ((adjacency + adjacency.T) > 0).astype(np.float64)
        known = labels[labels[:, 1] >= 0]
        targets = np.zeros((len(known), int(known[:, 1].max()) + 1), dtype=np.int8)
        targets[np.arange(len(known)), known[:, 1]] = 1
        return adjacency, known[:, 0], targets
    return read


def _block_model() -> dict:
    import networkx as nx

    sizes = [QUICK_NODES // 3] * 3
    probabilities = [[0.06 if i == j else 0.02 for j in range(3)] for i in range(3)]
    graph = nx.stochastic_block_model(sizes, probabilities, seed=0)
    targets = np.eye(3, dtype=np.int8)[np.repeat([0, 1, 2], sizes)]
    return {"adjacency": nx.to_scipy_sparse_array(graph, format="csr", dtype=np.float64),
            "labelled": np.arange(sum(sizes)), "targets": targets}


def split_nodes(data: dict, split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``data["labelled"]``) to train on and to score. Each seed shuffles the
    labelled nodes: half are the test nodes; on ``"test"`` the classifier trains on the other half,
    on ``"validation"`` on one half of that half and is scored on the other (test nodes unseen)."""
    order = np.random.RandomState(seed).permutation(len(data["labelled"]))
    half = len(order) // 2
    test, train = order[:half], order[half:]
    if split == "test":
        return train, test
    quarter = len(train) // 2
    return train[quarter:], train[:quarter]


def score_embedding(embedding: np.ndarray, data: dict, split: str, seed: int, C: float = 0.1) -> dict:
    """Micro- and Macro-F1 of one-vs-rest logistic regression (L-BFGS, ``C``) on the columns
    standardised on the training nodes, each scored node given its ``k`` best labels (``k`` = its
    number of labels), as DeepWalk's and FastRP's protocol."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    from graphkit.metrics import top_k_predictions

    features = np.asarray(embedding, dtype=np.float64)[data["labelled"]]
    targets = data["targets"]
    train, scored = split_nodes(data, split, seed)
    scaler = StandardScaler().fit(features[train])
    classifier = OneVsRestClassifier(LogisticRegression(C=C, max_iter=1000))
    classifier.fit(scaler.transform(features[train]), targets[train])
    probabilities = classifier.predict_proba(scaler.transform(features[scored]))
    predicted = top_k_predictions(probabilities, targets[scored].sum(axis=1))
    return {"micro_f1": float(f1_score(targets[scored], predicted, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(targets[scored], predicted, average="macro", zero_division=0))}
