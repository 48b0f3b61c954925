"""Run the authors' PamC code (gayanku/PAMC, ``train.py``) beside ours on the same pretrained autoencoder.

Used by the ``pamc_clustering`` benchmark when ``PAMC_REFERENCE`` names a checkout of github.com/gayanku/PAMC.
Nothing of theirs is copied here: their ``train.py`` is imported from the checkout and its PamC training
function (``train_scgc_trimPOS_CCSP``, the README's ``--model SCGC_TRIMPOSCCSP --influence``) is called
with the README's Citeseer arguments. Around it:

- the autoencoder is pretrained by SDCN's recipe (``data/pretrain.py`` of bdy9527/SDCN: 30 epochs, Adam 1e-3,
  batches of 256, MSE, an n_input-500-500-2000-10 encoder and the mirrored decoder), seeded, one per seed,
  saved where their code loads it (``<data_path>/data/cite.pkl``), and the SDCN-format files are written
  beside it (``data/cite.txt``, labels, ``graph/cite_graph.txt``);
- their profiler wrapper is left out (as for their published runs; on the CPU it grows past 17 GB), by
  giving their module a no-op ``record_function``;
- their loop's clock reads ``time.perf_counter`` (their ``time.time()`` is swapped for it), so the seconds
  they report are the wall seconds of their epochs, measured as ours (``PamC.history_``) are;
- the predictions they evaluate every epoch (``argmax q``) are recorded and scored with our metrics, so
  both sides are scored the same way; their own ``eva`` still runs, as in their loop;
- ``h5py`` (imported by their ``utils.py``, not used on this path) and ``munkres`` (their Hungarian
  matching) are stood in for when not installed, the latter by SciPy's ``linear_sum_assignment``.

Ours on the same autoencoder: ``PamC(encoder=<its encoder>, pretrain_epochs=0)`` with the same
hyperparameters (see ``benchmarks/pamc_clustering.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import time
import types
from pathlib import Path

import numpy as np

# the README's Citeseer line: --alpha 2 --beta 2.5 --order 3 --tau 0.5 --lr 0.001 --influence, 200 epochs
CITESEER_ARGS = dict(name="cite", k=None, lr=1e-3, n_clusters=6, n_z=10, model="SCGC_TRIMPOSCCSP", mode="full",
                     influence=True, epochs=200, iterations=1, verbosity=0, note="-", alpha=2.0, beta=2.5,
                     batch_size=2048, order=3, tau=0.5, cuda=False, n_input=3703)
SDCN_SIZES = (500, 500, 2000)


def _sdcn_autoencoder(n_input: int, n_z: int):
    """SDCN's autoencoder layout, with its parameter names (``enc_1`` .. ``z_layer``, ``dec_1`` .. ``x_bar_layer``)."""
    import torch.nn as nn
    import torch.nn.functional as F

    class Autoencoder(nn.Module):
        def __init__(self):
            super().__init__()
            sizes = [n_input, *SDCN_SIZES]
            for i in range(3):
                setattr(self, f"enc_{i + 1}", nn.Linear(sizes[i], sizes[i + 1]))
            self.z_layer = nn.Linear(sizes[-1], n_z)
            back = [n_z, *SDCN_SIZES[::-1]]
            for i in range(3):
                setattr(self, f"dec_{i + 1}", nn.Linear(back[i], back[i + 1]))
            self.x_bar_layer = nn.Linear(back[-1], n_input)

        def forward(self, x):
            h = x
            for i in range(3):
                h = F.relu(getattr(self, f"enc_{i + 1}")(h))
            z = self.z_layer(h)
            h = z
            for i in range(3):
                h = F.relu(getattr(self, f"dec_{i + 1}")(h))
            return self.x_bar_layer(h), z

    return Autoencoder()


def pretrain_autoencoder(X: np.ndarray, seed: int, path: Path, epochs: int = 30) -> None:
    """SDCN's pretraining recipe, seeded; the state dict goes to ``path``."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    x = torch.as_tensor(X, dtype=torch.float32)
    model = _sdcn_autoencoder(x.shape[1], CITESEER_ARGS["n_z"])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x), batch_size=256, shuffle=True)
    for _ in range(epochs):
        for (batch,) in loader:
            loss = F.mse_loss(model(batch)[0], batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)


def prepare_folder(work_dir: Path, seed: int, X: np.ndarray, y: np.ndarray, edges: np.ndarray, epochs: int) -> Path:
    """``work_dir/seed<s>`` in the SDCN layout their loaders read, with the seed's pretrained autoencoder."""
    shared = work_dir / "files"
    for sub, name, array in (("data", "cite.txt", X), ("data", "cite_label.txt", y), ("graph", "cite_graph.txt", edges)):
        _write_once(shared / sub / name, array)
    folder = work_dir / f"seed{seed}"
    for sub, name in (("data", "cite.txt"), ("data", "cite_label.txt"), ("graph", "cite_graph.txt")):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        link = folder / sub / name
        if not link.exists():
            link.symlink_to(shared / sub / name)
    autoencoder = folder / "data" / "cite.pkl"
    if not autoencoder.exists():
        partial = autoencoder.with_name(f"cite.{os.getpid()}.partial")
        pretrain_autoencoder(X, seed, partial, epochs)
        partial.replace(autoencoder)
    return folder


def _write_once(path: Path, array: np.ndarray) -> None:
    """``np.savetxt`` (integers as such), unless the file exists; atomic, so that runs side by side may share it."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    integers = np.array_equal(array, np.round(array))
    np.savetxt(partial, array, fmt="%d" if integers else "%.7g")
    partial.replace(path)


def _stand_ins() -> None:
    """Modules their code imports that this environment may lack."""
    # sys.modules first: find_spec raises on a stand-in put there by an earlier call (no __spec__).
    if "h5py" not in sys.modules and importlib.util.find_spec("h5py") is None:
        sys.modules["h5py"] = types.ModuleType("h5py")
    if "munkres" not in sys.modules and importlib.util.find_spec("munkres") is None:
        sys.modules["munkres"] = munkres_stand_in()


def munkres_stand_in() -> types.ModuleType:
    """A ``munkres`` module whose ``Munkres().compute(cost)`` is SciPy's minimum-cost assignment."""
    from scipy.optimize import linear_sum_assignment

    module = types.ModuleType("munkres")

    class Munkres:
        def compute(self, cost):
            rows, cols = linear_sum_assignment(np.asarray(cost))
            return list(zip(rows.tolist(), cols.tolist()))

    module.Munkres = Munkres
    module.print_matrix = lambda *args, **kwargs: None
    return module


def _no_profiling(name):
    import contextlib

    return contextlib.nullcontext()


def run_authors(checkout: Path, folder: Path, seed: int, epochs: int = 200, meter=None, **arguments) -> dict:
    """Their PamC training on ``folder``'s data and autoencoder; the evaluated predictions of every epoch.

    Parameters
    ----------
    checkout : path
        A checkout of gayanku/PAMC (its ``train.py`` is imported, its main block does not run).
    folder : path
        An SDCN-layout folder from :func:`prepare_folder`.
    seed : int
    epochs : int
        Their training epochs (the README's 200).
    meter : context manager, optional
        Wraps their training call (a :class:`benchmarks.harness.Meter` times it and measures its peak).
    **arguments
        Replace entries of :data:`CITESEER_ARGS` (e.g. ``n_input`` and ``n_clusters`` for other data).

    Returns
    -------
    dict
        ``final``, ``selected`` (the best epoch per metric, chosen with the labels) and ``init`` (their
        k-means start) scores, ``train_seconds`` (their loop's clock, wall) and ``epochs`` evaluated.
    """
    import contextlib

    import torch

    from graphkit.metrics import clustering_scores

    checkout = Path(checkout).resolve()
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))   # their train.py imports its sibling modules
    _stand_ins()
    spec = importlib.util.spec_from_file_location("pamc_authors_train", checkout / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)          # defines their functions; their __main__ block does not run
    module.args = argparse.Namespace(**dict(CITESEER_ARGS, **arguments, epochs=epochs), data_path=str(folder),
                                     seed=seed)
    module.device = torch.device("cpu")
    module.record_function = _no_profiling
    module.time = types.SimpleNamespace(time=time.perf_counter)
    predictions, start = [], {}
    original_eva = module.eva

    def recording_eva(y_true, y_pred, epoch=0, *args, **kwargs):
        tag = str(epoch)
        if tag.endswith("Q"):
            predictions.append(np.array(y_pred, copy=True))   # their cluster_acc may relabel y_pred in place
        elif tag == "Loaded PAE":
            start["labels"] = np.array(y_pred, copy=True)
        return original_eva(y_true, y_pred, epoch, *args, **kwargs)

    module.eva = recording_eva
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dataset = module.load_data(str(folder), CITESEER_ARGS["name"])
    with meter if meter is not None else contextlib.nullcontext():
        _, values = module.train_scgc_trimPOS_CCSP(dataset)
    y = dataset.y
    scores = [clustering_scores(y, labels) for labels in predictions]
    metrics = ("acc", "nmi", "ari", "f1")
    return {"final": scores[-1], "selected": {m: max(s[m] for s in scores) for m in metrics},
            "init": clustering_scores(y, start["labels"]), "train_seconds": float(values[-1]),
            "epochs": len(scores)}


def encoder_from_autoencoder(path: Path, n_input: int):
    """Our ``MLPEncoder`` holding the encoder half of an SDCN autoencoder's state dict."""
    import torch

    from graphkit.pamc import MLPEncoder

    state = torch.load(path, map_location="cpu", weights_only=True)
    encoder = MLPEncoder(n_input, SDCN_SIZES, CITESEER_ARGS["n_z"])
    with torch.no_grad():
        for layer, name in zip(encoder.layers, ("enc_1", "enc_2", "enc_3", "z_layer")):
            layer.weight.copy_(state[f"{name}.weight"])
            layer.bias.copy_(state[f"{name}.bias"])
    return encoder
