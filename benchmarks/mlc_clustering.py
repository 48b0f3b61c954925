"""MLC (manifold linearizing and clustering) against KMeans, spectral clustering and a Gaussian mixture.

Ding, Tong, Chan, Dai, Ma and Haeffele, "Unsupervised Manifold Linearizing and Clustering",
ICCV 2023 (arXiv:2301.01805); ours is :class:`graphkit.ManifoldClustering`. Writes
``benchmarks/results/mlc_clustering.md``.

- Data, every method on the same input matrix:
  - scikit-learn's digits (1,797 x 64, 10 classes), standardised;
  - Citeseer's bag-of-words features (``../shared/data/clustering/cite_sdcn``, 3,327 x 3,703,
    6 classes), TF-IDF weighted, reduced to 100 dimensions by truncated SVD and row-normalised
    (GaussianMixture cannot take 3,703 dimensions);
  - FastRP embeddings (128 dimensions, ``graphkit.FastRP`` defaults, no features) of the labelled
    graphs in ``../shared/data/graphs/`` (Cora, Citeseer, PubMed; BlogCatalog is multi-label);
  - a synthetic union of 3 curves (circle, spiral, circle) in 50 dimensions
    (:func:`graphkit.make_union_of_manifolds`, 1,500 points, noise 0.02).
- Methods: ours with its defaults (views of each sample drawn from its nearest neighbours,
  ``augment="knn"``, ``n_neighbors="auto"``) and ours without views (``augment=None``, the plain objective), the same
  settings otherwise; ``KMeans(n_init=10)``; ``SpectralClustering(affinity="nearest_neighbors",
  n_neighbors=10)`` (the RBF default with gamma=1 does not finish on raw digits);
  ``GaussianMixture(covariance_type="full")``; and, as the deep-clustering baseline, the toolkit's
  own :class:`graphkit.PamC` (SDCN-style autoencoder pretraining and block-contrastive training on a
  3-NN graph of the rows, its defaults; Citeseer's citation graph is not given to it, so every method
  sees the same feature matrix).
- ACC (Hungarian), NMI, ARI and seconds; mean ± std over ``--seeds`` seeds (the seed of every
  method's randomness).
- Scaling: one training epoch of ours (with its neighbour search) and its final clustering step on
  synthetic data of growing n (50 dimensions, up to 100,000 points), time and the peak memory the fit
  adds (3 fresh processes per size; median and largest, as the peak a process reads back varies from
  run to run).

Run: ``make bench`` (or ``python benchmarks/mlc_clustering.py [--quick] [--seeds N] [--out PATH]``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import numpy as np  # noqa: E402
from _common import added_peak_memory, machine_summary, run_in_fresh_process, save_report, verdict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "mlc_clustering.md"
DATA = ROOT.parent / "shared" / "data"
SCALING_REPEATS = 3
SPECTRAL_SAMPLES = 4000  # ManifoldClustering's default spectral_samples
OURS_DEFAULT, OURS_PLAIN = "MLC (ours)", "MLC (ours, no views)"
PAMC = "PamC (deep clustering, graphkit)"
METHODS = (OURS_DEFAULT, OURS_PLAIN, "KMeans", "SpectralClustering (10-NN)", "GaussianMixture", PAMC)
BASELINES = METHODS[2:]
# The paper's figures (ResNet-18 backbone, ACC / NMI); need image data and backbones not available here.
PAPER = [("CIFAR-10 (TCR pre-training)", 0.863, 0.783), ("CIFAR-10 (MoCoV2)", 0.922, 0.855),
         ("CIFAR-20 (TCR)", 0.522, 0.546), ("CIFAR-20 (MoCoV2)", 0.583, 0.596), ("CIFAR-100", 0.494, 0.683),
         ("TinyImageNet", 0.335, 0.675)]
# Ours per data set (the rest are the estimator's defaults).
OURS = {
    "digits": dict(n_epochs=50, warmup_epochs=10),
    "cite": dict(n_epochs=25, warmup_epochs=5),
    "fastrp": dict(n_epochs=25, warmup_epochs=5),
    "manifolds": dict(n_components=16, hidden=128, eta=0.3, n_epochs=40, warmup_epochs=10, batch_size=100),
}


# Probes behind the gaps (seed 0, one fit each, by hand); printed in the report, not rerun by it.
NOTES = [
    "Citeseer's features and the FastRP embeddings of Citeseer and PubMed are where ours is not the best. "
    "Probes on Citeseer (seed 0, ACC; ours with its defaults 0.568, KMeans 0.651), none of which closes the gap:",
    "- The labelling step is not what loses: spectral clustering of Γ and KMeans on the cluster head's features "
    "agree (0.568 each); KMeans on the linearised features (`embedding_`) gives 0.35.",
    "- Views. Ours draws each view from a row's nearest neighbours, and only 38% of a row's 10 nearest neighbours "
    "(Euclidean, in the SVD features) share its class. Neighbours by TF-IDF cosine share it more often (54%) but "
    "gave 0.513 / 0.55 (10 / 30 neighbours). Word dropout on the TF-IDF rows before the SVD, the text analogue of "
    "an image crop, gave 0.432 / 0.564 / 0.506 / 0.474 with two views at p = 0.2 / 0.5 / 0.8 / 0.9, and "
    "0.549 / 0.573 / 0.585 with four views at p = 0.5 / 0.65 / 0.8 (seed 1, p = 0.5: 0.524 with two views, "
    "0.564 with four): about where the neighbour views are.",
    "- The network and the objective: a linear network (one linear map per head) 0.555, and KMeans on its "
    "cluster head's features after the TCR warm-up only about 0.31; ε² (`eps`) = 0.05 / 0.2 instead of 0.1: "
    "0.546 / 0.505; 20 SVD dimensions instead of 100: 0.454 (KMeans 0.637 on them); raw TF-IDF input 0.36. "
    "A one-at-a-time sweep of the other settings (η 0.1 / 0.13 / 0.18 / 0.25: 0.43 / 0.47 / 0.49 / 0.36; "
    "n_components, hidden, invariance, n_neighbors, lr, γ, batch size, epochs, no warm-up) stayed at or "
    "below 0.58.",
    "- Input and Sinkhorn (probes of 2026-12-05; the defaults gave 0.569 in that run): the features centred "
    "before the unit-row normalisation 0.530 (KMeans on them 0.653), the first SVD component dropped 0.559, "
    "300 SVD dimensions 0.513, no warm-up 0.556, 20 Sinkhorn iterations 0.571, four neighbour views 0.567.",
    "- The FastRP embedding of Citeseer with views drawn from graph neighbours (72% share the class) instead of "
    "feature neighbours: 0.281 (KMeans 0.290). KMeans stays at 0.29-0.31 whatever FastRP's iteration weights, "
    "so that embedding barely separates the classes for any method.",
    "- The FastRP embedding of PubMed with views from graph neighbours (79% share the class): ACC 0.438 / 0.401, "
    "NMI 0.067 / 0.093 (seeds 0 / 1) against PamC's 0.451 / 0.065 (3-seed means): a higher NMI, a lower ACC. "
    "There the largest class alone is 40% of the nodes (SpectralClustering's one cluster scores 0.399), so every "
    "method's ACC is near what one cluster gives.",
    "- Views from the citation graph instead of feature neighbours (probes of 2026-12-05, the graph in "
    "`cite_graph.txt`; each row's pool is 20 draws from its graph neighbours, a row without any keeps itself), 3 "
    "seeds: 1-hop neighbours (72% share the class) ACC 0.569 / NMI 0.343, 2-hop (70%) 0.617 / 0.381 (0.629 / "
    "0.613 / 0.609). Both trail KMeans on the features alone (0.651 / 0.387); methods that use the graph too do "
    "better still: KMeans on the features smoothed by two steps of the normalised adjacency (with self-loops) "
    "0.691 / 0.440 (seed 0).",
    "- What they suggest: the rate-reduction objective finds a partition into near-orthogonal subspaces, and "
    "which points belong together comes from the views. With image augmentations (the paper's setting) a view is "
    "the same image, so it always shares the class; the views tried here share it 38-72% of the time, and even at "
    "70% the partition follows the class less well than KMeans' centroids on the features do. The paper's image "
    "figures need image backbones and data that this machine does not have.",
]


def limit_threads() -> None:
    import torch

    torch.set_num_threads(1)


# -- data ---------------------------------------------------------------------------------------

def load_citeseer(folder: Path):
    """SDCN's Citeseer: TF-IDF of the binary features, 100-d truncated SVD, unit rows; labels from 0."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.preprocessing import normalize

    x = np.load(folder / "cite_features.npz")["x"].astype(np.float64)
    y = np.loadtxt(folder / "cite_label.txt", dtype=np.int64)
    y = y - y.min()
    tfidf = TfidfTransformer().fit_transform(x)
    reduced = TruncatedSVD(100, random_state=0).fit_transform(tfidf)
    return normalize(reduced), y


def load_graph_embedding(name: str, folder: Path, seed: int = 0):
    """FastRP embedding of a labelled graph (edge list + ``node label`` file), labelled nodes only."""
    from graphkit import FastRP, read_edgelist

    graph = read_edgelist(folder / f"{name}.edgelist")
    table = np.loadtxt(folder / f"{name}.labels", dtype=np.int64)
    label_of = dict(zip(table[:, 0].tolist(), table[:, 1].tolist()))
    ids = [int(i) for i in graph.node_ids]
    y = np.array([label_of.get(i, -1) for i in ids])
    z = FastRP(n_components=128, random_state=seed, device="cpu").fit_transform(graph)
    keep = y >= 0
    return np.asarray(z)[keep], np.unique(y[keep], return_inverse=True)[1]


def datasets(quick: bool) -> dict:
    """name -> (title, X, y, note); absent real data is listed with X None."""
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    from graphkit import make_union_of_manifolds

    out = {}
    X, y = load_digits(return_X_y=True)
    out["digits"] = ("digits (1,797 x 64, 10 classes)", StandardScaler().fit_transform(X), y, "")
    data = make_union_of_manifolds(n_samples=300 if quick else 1500, n_manifolds=3, n_features=50, kind="curves",
                                   noise=0.02, random_state=0)
    out["manifolds"] = (f"union of 3 curves in 50-d ({len(data.X)} points)", data.X, data.labels, "")
    if quick:
        return out
    folder = DATA / "clustering" / "cite_sdcn"
    if (folder / "cite_features.npz").exists():
        X, y = load_citeseer(folder)
        out["cite"] = ("Citeseer features (SDCN, 3,327 x 3,703 -> TF-IDF, SVD 100)", X, y, "")
    else:
        out["cite"] = ("Citeseer features (SDCN)", None, None, f"skipped: {folder} absent")
    for name in ("cora", "citeseer", "pubmed"):
        folder = DATA / "graphs" / name
        if (folder / f"{name}.edgelist").exists():
            X, y = load_graph_embedding(name, folder)
            out[f"fastrp-{name}"] = (f"FastRP embedding of {name} ({len(X)} x 128, {len(np.unique(y))} classes)",
                                     X, y, "")
        else:
            out[f"fastrp-{name}"] = (f"FastRP embedding of {name}", None, None, f"skipped: {folder} absent")
    return out


# -- methods ------------------------------------------------------------------------------------

def run_method(method: str, name: str, X: np.ndarray, k: int, seed: int, quick: bool) -> np.ndarray:
    from sklearn.cluster import KMeans, SpectralClustering
    from sklearn.mixture import GaussianMixture

    from graphkit import ManifoldClustering

    if method in (OURS_DEFAULT, OURS_PLAIN):
        params = dict(OURS["fastrp" if name.startswith("fastrp") else name])
        if method == OURS_PLAIN:
            params["augment"] = None
        if quick:
            params.update(n_epochs=3, warmup_epochs=1)
        return ManifoldClustering(n_clusters=k, random_state=seed, device="cpu", verbose=0, **params).fit_predict(X)
    if method == PAMC:
        from graphkit import PamC

        params = dict(pretrain_epochs=2, n_epochs=3) if quick else {}
        return PamC(n_clusters=k, random_state=seed, device="cpu", verbose=0, **params).fit_predict(X)
    if method == "KMeans":
        return KMeans(k, n_init=10, random_state=seed).fit_predict(X)
    if method == "SpectralClustering (10-NN)":
        return SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=10, random_state=seed,
                                  assign_labels="kmeans").fit_predict(X)
    return GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed).fit_predict(X)


def run_all(data: dict, seeds: int, quick: bool) -> dict:
    from graphkit.metrics import clustering_scores

    results = {}
    for name, (title, X, y, note) in data.items():
        if X is None:
            continue
        k = len(np.unique(y))
        for method in METHODS:
            rows = []
            for seed in range(seeds):
                started = time.perf_counter()
                labels = run_method(method, name, X, k, seed, quick)
                seconds = time.perf_counter() - started
                rows.append({**clustering_scores(y, labels), "seconds": seconds})
                print(f"{name:16s} {method:28s} seed {seed}: acc {rows[-1]['acc']:.3f} nmi {rows[-1]['nmi']:.3f} "
                      f"{seconds:.1f}s", file=sys.stderr, flush=True)
            results[(name, method)] = rows
    return results


# -- scaling ------------------------------------------------------------------------------------

def scaling_child(spec: str) -> None:
    """In a fresh process: one epoch and the final clustering step on n synthetic points."""
    limit_threads()
    from graphkit import ManifoldClustering, make_union_of_manifolds

    n = int(spec)
    data = make_union_of_manifolds(n_samples=n, n_manifolds=5, n_features=50, kind="subspaces", dim=3,
                                   random_state=0)
    warm = ManifoldClustering(n_clusters=5, n_epochs=1, warmup_epochs=0, random_state=0, device="cpu", verbose=0)
    warm.fit(data.X[:600])  # imports and first-call costs outside the measured block
    model = ManifoldClustering(n_clusters=5, n_epochs=1, warmup_epochs=0, random_state=0, device="cpu", verbose=0)
    with added_peak_memory() as memory:
        started = time.perf_counter()
        model.fit(data.X)
        seconds = time.perf_counter() - started
    epoch = model.history_[-1]["seconds"]
    print(json.dumps({"n": n, "seconds": seconds, "epoch_seconds": epoch, "peak_bytes": memory["bytes"],
                      "data_bytes": data.X.nbytes}))


def run_scaling(quick: bool) -> list:
    """Each size in ``SCALING_REPEATS`` fresh processes: the peak memory a process reads back varies
    from run to run (allocator behaviour), so the median and the largest are both reported."""
    sizes = (1000, 4000) if quick else (2000, 20000, 100000)
    rows = []
    for n in sizes:
        runs = [run_in_fresh_process(__file__, "--scaling-child", str(n)) for _ in range(1 if quick else SCALING_REPEATS)]
        failed = [r for r in runs if "error" in r]
        if failed:
            rows.append({"n": n, "error": failed[0]["error"]})
            continue
        peaks = [r["peak_bytes"] for r in runs]
        rows.append({"n": n, "seconds": statistics.median(r["seconds"] for r in runs),
                     "epoch_seconds": statistics.median(r["epoch_seconds"] for r in runs),
                     "peak_bytes": statistics.median(peaks), "peak_max_bytes": max(peaks),
                     "data_bytes": runs[0]["data_bytes"], "runs": len(runs)})
    return rows


# -- report -------------------------------------------------------------------------------------

def _fmt(values: list) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def results_table(data: dict, results: dict) -> list:
    lines = []
    for name, (title, X, y, note) in data.items():
        lines += [f"### {title}", ""]
        if X is None:
            lines += [note, ""]
            continue
        lines += ["| method | ACC | NMI | ARI | seconds |", "|---|---|---|---|---|"]
        for method in METHODS:
            rows = results[(name, method)]
            lines.append(f"| {method} | " + " | ".join(_fmt([r[m] for r in rows]) for m in ("acc", "nmi", "ari"))
                         + f" | {statistics.mean(r['seconds'] for r in rows):.1f} |")
        lines.append("")
    return lines


def goal_lines(data: dict, results: dict) -> tuple[list, bool]:
    lines, all_ok = [], True
    for name, (title, X, y, note) in data.items():
        if X is None:
            continue
        means = {m: {s: statistics.mean(r[s] for r in results[(name, m)]) for s in ("acc", "nmi")} for m in METHODS}
        # the defaults (kNN views) against the baselines; the no-views row is shown, not chosen per data set
        ok = all(means[OURS_DEFAULT][s] >= max(means[m][s] for m in BASELINES) for s in ("acc", "nmi"))
        best = {s: max(BASELINES, key=lambda m: means[m][s]) for s in ("acc", "nmi")}
        all_ok &= ok
        ours, plain = means[OURS_DEFAULT], means[OURS_PLAIN]
        lines.append(f"  - {name}: {verdict(ok)} (best baseline ACC: {best['acc']} {means[best['acc']]['acc']:.3f}; "
                     f"best baseline NMI: {best['nmi']} {means[best['nmi']]['nmi']:.3f}; ours {ours['acc']:.3f} / "
                     f"{ours['nmi']:.3f}; ours without views {plain['acc']:.3f} / {plain['nmi']:.3f})")
    return lines, all_ok


def memory_goal_line(rows: list) -> str:
    """Flat memory: from the first size whose spectral sample is full to the largest, the peak the
    fit adds may grow by at most a quarter (the data and the n x n_components outputs are O(n))."""
    full = [r for r in rows if "error" not in r and r["n"] >= SPECTRAL_SAMPLES]
    if len(full) < 2:
        return "- Memory flat as n grows: not measured (needs two sizes of at least 4,000 points)"
    first, last = full[0], full[-1]
    ratio = last["peak_bytes"] / first["peak_bytes"]
    return (f"- Memory flat as n grows: {verdict(ratio <= 1.25)} (peak added {first['peak_bytes'] / 2**20:.0f} MiB at "
            f"n = {first['n']:,}, {last['peak_bytes'] / 2**20:.0f} MiB at n = {last['n']:,}: x{ratio:.2f} for "
            f"x{last['n'] / first['n']:.0f} the points; below {SPECTRAL_SAMPLES:,} points the spectral step is smaller)")


def scaling_table(rows: list) -> list:
    lines = ["| n | fit seconds (neighbours + 1 epoch + clustering) | neighbours + epoch seconds | "
             "peak memory added, median (MiB) | "
             "largest (MiB) | data (MiB) | runs |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['n']} | failed: {row['error']} | | | | | |")
            continue
        lines.append(f"| {row['n']} | {row['seconds']:.1f} | {row['epoch_seconds']:.1f} | "
                     f"{row['peak_bytes'] / 2**20:.0f} | {row['peak_max_bytes'] / 2**20:.0f} | "
                     f"{row['data_bytes'] / 2**20:.0f} | {row['runs']} |")
    return lines


def write_report(out: Path, args, data: dict, results: dict, scaling: list, elapsed: float) -> None:
    import sklearn
    import torch

    goal, ok = goal_lines(data, results)
    lines = [
        "# MLC clustering benchmark", "",
        f"Generated by `benchmarks/mlc_clustering.py` on {datetime.date.today().isoformat()}"
        + (" in **quick mode** (a smoke test: tiny training, not a result)" if args.quick else "") + ".", "",
        f"- Machine: {machine_summary()}, one thread; torch {torch.__version__}, scikit-learn {sklearn.__version__}.",
        f"- Seeds: {args.seeds}; mean ± std over seeds. Run time {elapsed / 60:.1f} min.",
        "- Ours: `graphkit.ManifoldClustering` with, per data set: "
        + "; ".join(f"{k}: {v}" for k, v in OURS.items()) + ".", "",
        "## Goal", "",
        f"- Best ACC and NMI of the table on every data set: {verdict(ok)} (ours with its defaults, kNN views, "
        "against the baselines)",
        *goal, memory_goal_line(scaling), "",
        "## Results", "", *results_table(data, results),
        "## Scaling with n (synthetic, 50-d, 5 subspaces; the defaults: the nearest neighbours of every point "
        "(`n_neighbors=\"auto\"`: 40 at n = 2,000, 50 above), one epoch of mini-batches of 512 with two views "
        "each, and the final Sinkhorn + spectral step on at most 4,000 points)", "",
        *scaling_table(scaling), "",
        "## Issue's reference figures (not reproduced here)", "",
        "The paper's ACC / NMI with a ResNet-18 backbone on image data (not available on this machine):", "",
        "| data | ACC | NMI |", "|---|---|---|", *[f"| {n} | {a:.3f} | {m:.3f} |" for n, a, m in PAPER], "",
        "The issue's own sketch on digits (CPP components, toy settings): ACC 0.79-0.83 / NMI 0.78-0.84, "
        "against KMeans 0.793/0.742 and 10-NN spectral clustering 0.808/0.854.", "",
        "## Where ours falls short", "", *NOTES, "",
    ]
    save_report(out, lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 seed, tiny training, digits + synthetic (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--scaling-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scaling_child:
        scaling_child(args.scaling_child)
        return 0
    limit_threads()
    if args.quick:
        args.seeds = 1
    started = time.perf_counter()
    data = datasets(args.quick)
    results = run_all(data, args.seeds, args.quick)
    scaling = run_scaling(args.quick)
    write_report(args.out, args, data, results, scaling, time.perf_counter() - started)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
