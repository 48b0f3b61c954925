"""MLC (manifold linearizing and clustering) against KMeans, spectral clustering, a Gaussian mixture and PamC."""

from __future__ import annotations

from .harness import Benchmark, Column, Dataset, Goal, Method, Reference, Table
from .paths import shared_data

OURS, OURS_PLAIN = "MLC (ours)", "MLC (ours, no views)"
SPECTRAL, PAMC = "SpectralClustering (10-NN)", "PamC (deep clustering, graphkit)"
BASELINES = ("KMeans", SPECTRAL, "GaussianMixture", PAMC)
GRAPHS = ("cora", "citeseer", "pubmed")
CLUSTERING = ("digits", "union of 3 curves", "Citeseer features", *(f"FastRP {name}" for name in GRAPHS))
SCALING_SIZES, QUICK_SCALING_SIZES = (2000, 20000, 100000), (1000,)
SPECTRAL_SAMPLES = 4000    # ManifoldClustering's default spectral_samples
# Ours per data set, fixed in the first version of the benchmark and not chosen here (no labels are used to
# choose anything): the estimator's defaults on digits, fewer epochs on the larger inputs, and the
# configuration of the estimator's own documented example on the synthetic curves.
SHORT = dict(n_epochs=25, warmup_epochs=5)
CURVES = dict(n_components=16, hidden=128, eta=0.3, n_epochs=40, warmup_epochs=10, batch_size=100)


# -- data ----------------------------------------------------------------------------------------

def load_digits(quick: bool):
    from sklearn.datasets import load_digits as digits
    from sklearn.preprocessing import StandardScaler

    X, y = digits(return_X_y=True)
    return {"X": StandardScaler().fit_transform(X), "y": y, "ours": {}}


def load_curves(quick: bool):
    from graphkit import make_union_of_manifolds

    data = make_union_of_manifolds(n_samples=300 if quick else 1500, n_manifolds=3, n_features=50, kind="curves",
                                   noise=0.02, random_state=0)
    return {"X": data.X, "y": data.labels, "ours": CURVES}


def load_citeseer(quick: bool):
    """SDCN's Citeseer: TF-IDF of the binary features, 100-d truncated SVD, unit rows; labels from 0."""
    import numpy as np
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.preprocessing import normalize

    folder = shared_data("clustering", "cite_sdcn")
    x = np.load(folder / "cite_features.npz")["x"].astype(np.float64)
    y = np.loadtxt(folder / "cite_label.txt", dtype=np.int64)
    reduced = TruncatedSVD(100, random_state=0).fit_transform(TfidfTransformer().fit_transform(x))
    return {"X": normalize(reduced), "y": y - y.min(), "ours": SHORT}


def graph_loader(name: str):
    def load(quick: bool):
        """FastRP embedding (128 dimensions, defaults, random_state=0) of a labelled graph, labelled nodes only."""
        import numpy as np

        from graphkit import FastRP, read_edgelist

        folder = shared_data("graphs", name)
        graph = read_edgelist(folder / f"{name}.edgelist")
        table = np.loadtxt(folder / f"{name}.labels", dtype=np.int64)
        label_of = dict(zip(table[:, 0].tolist(), table[:, 1].tolist()))
        y = np.array([label_of.get(int(i), -1) for i in graph.node_ids])
        z = np.asarray(FastRP(n_components=128, random_state=0, device="cpu").fit_transform(graph))
        keep = y >= 0
        return {"X": z[keep], "y": np.unique(y[keep], return_inverse=True)[1], "ours": SHORT}

    return load


def scaling_loader(n: int):
    def load(quick: bool):
        from graphkit import make_union_of_manifolds

        return make_union_of_manifolds(n_samples=n, n_manifolds=5, n_features=50, kind="subspaces", dim=3,
                                       random_state=0)

    return load


def datasets(quick: bool) -> list:
    found = [Dataset("digits", load_digits, {"family": "clustering"},
                     "scikit-learn's digits (1,797 x 64, 10 classes), standardised"),
             Dataset("union of 3 curves", load_curves, {"family": "clustering"},
                     "graphkit.make_union_of_manifolds: circle, spiral, circle in 50-d, noise 0.02 (1,500 points; 300 in quick mode)")]
    if not quick:
        found.append(Dataset("Citeseer features", load_citeseer, {"family": "clustering"},
                             "SDCN's Citeseer (3,327 x 3,703), TF-IDF, 100-d truncated SVD, unit rows, 6 classes"))
        found += [Dataset(f"FastRP {name}", graph_loader(name), {"family": "clustering"},
                          f"FastRP embedding (128-d) of {name}'s graph, labelled nodes") for name in GRAPHS]
    found += [Dataset(f"scaling n={n}", scaling_loader(n), {"family": "scaling", "n": n},
                      f"{n:,} points on 5 three-dimensional subspaces in 50-d")
              for n in (QUICK_SCALING_SIZES if quick else SCALING_SIZES)]
    return found


# -- methods -------------------------------------------------------------------------------------

def scores(data: dict, labels) -> dict:
    from graphkit.metrics import clustering_scores

    return {name: float(value) for name, value in clustering_scores(data["y"], labels).items()}


def n_clusters(data: dict) -> int:
    import numpy as np

    return len(np.unique(data["y"]))


def mlc(data, *, split, seed, meter, augment="knn", short=False):
    from graphkit import ManifoldClustering

    params = dict(data["ours"], augment=augment)
    if short:
        params.update(n_epochs=3, warmup_epochs=1)
    model = ManifoldClustering(n_clusters=n_clusters(data), random_state=seed, device="cpu", verbose=0, **params)
    with meter:
        labels = model.fit_predict(data["X"])
    return scores(data, labels)


def pamc(data, *, split, seed, meter, short=False):
    from graphkit import PamC

    params = dict(pretrain_epochs=2, n_epochs=3) if short else {}
    model = PamC(n_clusters=n_clusters(data), random_state=seed, device="cpu", verbose=0, **params)
    with meter:
        labels = model.fit_predict(data["X"])
    return scores(data, labels)


def kmeans(data, *, split, seed, meter):
    from sklearn.cluster import KMeans

    with meter:
        labels = KMeans(n_clusters(data), n_init=10, random_state=seed).fit_predict(data["X"])
    return scores(data, labels)


def spectral(data, *, split, seed, meter):
    from sklearn.cluster import SpectralClustering

    model = SpectralClustering(n_clusters(data), affinity="nearest_neighbors", n_neighbors=10, random_state=seed,
                               assign_labels="kmeans")
    with meter:
        labels = model.fit_predict(data["X"])
    return scores(data, labels)


def mixture(data, *, split, seed, meter):
    from sklearn.mixture import GaussianMixture

    model = GaussianMixture(n_clusters(data), covariance_type="full", reg_covar=1e-4, random_state=seed)
    with meter:
        labels = model.fit_predict(data["X"])
    return scores(data, labels)


def one_epoch(data, *, split, seed, meter):
    """In a fresh process: one epoch (with the neighbour search) and the final clustering step."""
    from graphkit import ManifoldClustering

    settings = dict(n_clusters=5, n_epochs=1, warmup_epochs=0, random_state=seed, device="cpu", verbose=0)
    ManifoldClustering(**settings).fit(data.X[:600])   # imports and first-call costs outside the measured block
    model = ManifoldClustering(**settings)
    with meter:
        model.fit(data.X)
    return {"epoch_seconds": model.history_[-1]["seconds"], "data_bytes": data.X.nbytes}


# -- goals ---------------------------------------------------------------------------------------

def margin(method: str, dataset: str, metric: str):
    """Ours on this seed less the best baseline's mean over seeds: its mean is the old criterion,
    mean(ours) - max over baselines of mean(baseline)."""
    def value(r, seed):
        best = max(r.mean(metric, method=name, dataset=dataset) for name in BASELINES)
        return r.value(metric, method=method, dataset=dataset, seed=seed) - best

    return value


def memory_ratio(r, seed):
    small, large = SCALING_SIZES[1], SCALING_SIZES[-1]
    return (r.value("peak_bytes", method="MLC one epoch", n=large, seed=seed)
            / r.value("peak_bytes", method="MLC one epoch", n=small, seed=seed))


def goals() -> list:
    found = []
    for dataset in CLUSTERING:
        for metric in ("acc", "nmi"):
            found.append(Goal(f"{dataset}: ours (kNN views) at least the best baseline's {metric.upper()} "
                              "(ours - best baseline mean)", margin(OURS, dataset, metric), ">=", 0.0,
                              tolerance=0.05, fmt="{:+.3f}"))
        found.append(Goal(f"{dataset}: ours without views against the best baseline's ACC",
                          margin(OURS_PLAIN, dataset, "acc"), ">=", 0.0, tolerance=0.05, fmt="{:+.3f}", kind="context"))
    found.append(Goal(f"Memory flat as n grows: the peak a fit adds at n = {SCALING_SIZES[-1]:,} over the peak at "
                      f"n = {SCALING_SIZES[1]:,} (the first size with a full spectral sample)", memory_ratio, "<=", 1.25,
                      tolerance=0.15, fmt="{:.2f}"))
    return found


# -- the spec ------------------------------------------------------------------------------------

def clustering_method(name, run, kind="peer", description="", **options) -> Method:
    return Method(name, run, kind=kind, datasets=list(CLUSTERING), description=description, **options)


PAPER = [("CIFAR-10 (TCR pre-training)", 0.863, 0.783), ("CIFAR-10 (MoCoV2)", 0.922, 0.855),
         ("CIFAR-20 (TCR)", 0.522, 0.546), ("CIFAR-20 (MoCoV2)", 0.583, 0.596), ("CIFAR-100", 0.494, 0.683),
         ("TinyImageNet", 0.335, 0.675)]
PAPER_SOURCE = "Ding et al., ICCV 2023 (arXiv:2301.01805), ResNet-18 backbone on images; not run here"
ISSUE_SOURCE = "the MLC issue's own sketch on digits (toy settings), run by its author; not run here"
RESULT_COLUMNS = [Column("acc", "ACC", "{:.3f}"), Column("nmi", "NMI", "{:.3f}"), Column("ari", "ARI", "{:.3f}"),
                  Column("seconds", "seconds (median)", "{:.1f}", "median")]

BENCHMARK = Benchmark(
    name="mlc_clustering",
    title="MLC clustering benchmark",
    description="""
- Method: Ding, Tong, Chan, Dai, Ma and Haeffele, *Unsupervised Manifold Linearizing and Clustering* (ICCV 2023, arXiv:2301.01805); ours is `graphkit.ManifoldClustering`.
- Data, every method on the same input matrix: scikit-learn's digits (standardised); Citeseer's bag-of-words features (`../shared/data/clustering/cite_sdcn`, TF-IDF, 100-d truncated SVD, unit rows; GaussianMixture cannot take 3,703 dimensions); FastRP embeddings (128-d, `graphkit.FastRP` defaults, random_state 0, no features) of the labelled graphs in `../shared/data/graphs/` (Cora, Citeseer, PubMed); a synthetic union of 3 curves in 50-d. Quick mode: digits, 300 points of curves and one scaling size (1,000 points).
- Methods: ours with its defaults (views of each sample drawn from its nearest neighbours, `augment="knn"`, `n_neighbors="auto"`) and ours without views (`augment=None`, the plain objective), the same settings otherwise; `KMeans(n_init=10)`; `SpectralClustering(affinity="nearest_neighbors", n_neighbors=10)` (the RBF default with gamma = 1 does not finish on raw digits); `GaussianMixture(covariance_type="full", reg_covar=1e-4)`; and, as the deep-clustering baseline, the toolkit's own `graphkit.PamC` at its defaults (SDCN-style autoencoder pretraining and block-contrastive training on a 3-NN graph of the rows; Citeseer's citation graph is not given to it).
- Ours per data set: the estimator's defaults on digits (50 epochs, 10 warm-up); 25 epochs and 5 warm-up on Citeseer's features and the FastRP embeddings (for run time); on the curves the configuration of the estimator's documented example (16 components, hidden 128, eta 0.3, 40 epochs, 10 warm-up, batch 100). **No setting of any method is chosen here, and none with the labels**: clustering has no training labels to hold out, so every configuration is fixed before the run (the documented defaults, or the settings named above, unchanged from the first version of the benchmark); the labels are used only to score. Quick mode: 3 epochs (1 warm-up) for ours, 2 + 3 for PamC.
- Scores: ACC (Hungarian matching), NMI, ARI over all points; the seed drives every method's randomness.
- Scaling: one training epoch of ours (with its neighbour search, `n_neighbors="auto"`: 40 at n = 2,000, 50 above; mini-batches of 512 with two views each) and its final Sinkhorn + spectral step on at most 4,000 points, on 5 three-dimensional subspaces in 50-d; each seed's fit in a fresh process, so the peak memory the fit adds is its own (after a 600-point warm-up fit outside the measured block). The peak a process reads back varies from run to run (allocator behaviour), so the median and the largest are reported.
- The hand-made probes of the earlier report (why ours trails KMeans on Citeseer) are not rerun by this benchmark and are not repeated here.
""",
    datasets=datasets,
    methods=[
        clustering_method(OURS, mlc, kind="ours", quick={"short": True}, description="kNN views (the default)"),
        clustering_method(OURS_PLAIN, mlc, kind="ours", settings={"augment": None}, quick={"short": True},
                          description="no views, the plain objective"),
        clustering_method("KMeans", kmeans),
        clustering_method(SPECTRAL, spectral),
        clustering_method("GaussianMixture", mixture),
        clustering_method(PAMC, pamc, quick={"short": True}),
        Method("MLC one epoch", one_epoch, datasets=[f"scaling n={n}" for n in (*QUICK_SCALING_SIZES, *SCALING_SIZES)],
               isolate=True, description="one epoch and the final clustering step, in a fresh process"),
    ],
    seeds=(0, 1, 2),
    quick_seeds=(0,),
    threads=1,
    goals=goals(),
    references=[
        *[Reference("MLC (paper)", data, {"ACC": acc, "NMI": nmi}, PAPER_SOURCE) for data, acc, nmi in PAPER],
        Reference("CPP-style sketch", "digits", {"ACC low": 0.79, "ACC high": 0.83, "NMI low": 0.78, "NMI high": 0.84},
                  ISSUE_SOURCE),
        Reference("KMeans", "digits", {"ACC": 0.793, "NMI": 0.742}, ISSUE_SOURCE),
        Reference("10-NN spectral clustering", "digits", {"ACC": 0.808, "NMI": 0.854}, ISSUE_SOURCE),
    ],
    tables=[
        *[Table(dataset, RESULT_COLUMNS, datasets=[dataset]) for dataset in CLUSTERING],
        Table("Scaling with n (synthetic, 50-d, 5 subspaces)",
              [Column("seconds", "fit seconds (median)", "{:.1f}", "median"),
               Column("epoch_seconds", "neighbours + epoch seconds (median)", "{:.1f}", "median"),
               Column("peak_bytes", "peak MiB added (median)", "{:.0f}", "median", 2**-20),
               Column("peak_bytes", "largest", "{:.0f}", "max", 2**-20),
               Column("data_bytes", "data MiB", "{:.0f}", "max", 2**-20)],
              rows=("n",), methods=["MLC one epoch"],
              note=f"Below {SPECTRAL_SAMPLES:,} points the spectral step is smaller; the memory goal starts there."),
    ],
)
