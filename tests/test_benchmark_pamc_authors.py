"""The harness that runs the authors' PamC code beside ours (``benchmarks/_pamc_clustering_authors.py``).

Their code is not part of the project; a stand-in ``train.py`` with the same interface checks the plumbing:
the module is imported without running its main block, the profiler and clock are replaced, and the
predictions their loop evaluates are recorded before their evaluation can relabel them in place.
"""

import importlib
import itertools
import sys
import textwrap

import numpy as np
import pytest
import torch

from benchmarks import _pamc_clustering_authors as authors
from benchmarks.harness import Meter

FAKE_TRAIN = textwrap.dedent('''
    import time
    import numpy as np
    from evaluation import eva

    if __name__ == "__main__":
        raise SystemExit("the main block must not run")

    class load_data:
        def __init__(self, path, name):
            self.y = np.loadtxt(f"{path}/data/{name}_label.txt", dtype=int)
            self.x = np.loadtxt(f"{path}/data/{name}.txt", dtype=float)

    def train_scgc_trimPOS_CCSP(dataset):
        y = dataset.y
        eva(y, np.zeros_like(y), "Loaded PAE")
        start = time.time()
        for epoch in range(args.epochs):
            with record_function("_MODEL_TRAIN"):
                prediction = (y + epoch) % args.n_clusters if epoch < args.epochs - 1 else y.copy()
            eva(y, prediction, str(epoch) + "Q")
            eva(y, prediction, str(epoch) + "P")
        return None, (0.0, time.time() - start)
''')
FAKE_EVALUATION = textwrap.dedent('''
    def eva(y_true, y_pred, epoch=0, *args, **kwargs):
        y_pred[:] = -1            # the authors' cluster_acc may rewrite y_pred in place
        return 0, 0, 0, 0
''')


def test_sdcn_autoencoder_pretraining_is_seeded_and_its_encoder_transfers(tmp_path):
    X = (np.random.RandomState(0).rand(40, 12) < 0.3).astype(np.float64)
    first, second = tmp_path / "a.pkl", tmp_path / "b.pkl"
    authors.pretrain_autoencoder(X, seed=3, path=first, epochs=1)
    authors.pretrain_autoencoder(X, seed=3, path=second, epochs=1)
    state, again = torch.load(first, weights_only=True), torch.load(second, weights_only=True)
    assert set(state) >= {"enc_1.weight", "z_layer.bias", "dec_3.weight", "x_bar_layer.bias"}
    assert all(torch.equal(state[key], again[key]) for key in state)
    autoencoder = authors._sdcn_autoencoder(12, 10)
    autoencoder.load_state_dict(state)
    encoder = authors.encoder_from_autoencoder(first, 12)
    x = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        assert torch.allclose(encoder(x), autoencoder(x)[1], atol=1e-6)


def test_stand_ins_installed_by_one_run_do_not_break_the_next(monkeypatch):
    """A second seed in the same process failed with "h5py.__spec__ is None": find_spec raises on a
    module in sys.modules that has no spec, as the stand-ins have."""
    real = importlib.util.find_spec

    def find_spec(name, package=None):
        if name in ("h5py", "munkres") and name not in sys.modules:
            return None   # as where neither is installed
        return real(name, package)

    for name in ("h5py", "munkres"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(authors.importlib.util, "find_spec", find_spec)
    try:
        authors._stand_ins()
        authors._stand_ins()   # the next seed
        assert sys.modules["h5py"].__spec__ is None and hasattr(sys.modules["munkres"], "Munkres")
    finally:   # no stand-in outlives the test (monkeypatch then puts back any real module)
        for name in ("h5py", "munkres"):
            sys.modules.pop(name, None)


def test_munkres_stand_in_finds_the_minimum_cost_assignment():
    cost = np.random.RandomState(1).randint(0, 50, size=(5, 5)).tolist()
    pairs = authors.munkres_stand_in().Munkres().compute(cost)
    best = min(sum(cost[i][p[i]] for i in range(5)) for p in itertools.permutations(range(5)))
    assert sorted(i for i, _ in pairs) == list(range(5)) and sum(cost[i][j] for i, j in pairs) == best


def test_run_authors_records_the_evaluated_predictions_of_a_stand_in_checkout(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "train.py").write_text(FAKE_TRAIN)
    (checkout / "evaluation.py").write_text(FAKE_EVALUATION)
    folder = tmp_path / "seed0"
    (folder / "data").mkdir(parents=True)
    y = np.repeat(np.arange(6), 5)
    np.savetxt(folder / "data" / "cite_label.txt", y, fmt="%d")
    np.savetxt(folder / "data" / "cite.txt", np.eye(30), fmt="%d")
    try:
        meter = Meter()
        result = authors.run_authors(checkout, folder, seed=0, epochs=4, meter=meter)
    finally:  # the harness puts the checkout first on the path, as in its own process
        sys.modules.pop("evaluation", None)
        sys.path.remove(str(checkout.resolve()))
    assert result["epochs"] == 4
    assert result["final"]["acc"] == pytest.approx(1.0) and result["selected"]["nmi"] == pytest.approx(1.0)
    assert result["init"]["acc"] == pytest.approx(1 / 6)
    assert 0.0 <= result["train_seconds"] <= meter.seconds < 60
