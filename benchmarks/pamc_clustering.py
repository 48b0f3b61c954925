"""PamC on the SDCN benchmarks: accuracy, time and memory against the all-pairs loss and baselines.

Writes ``benchmarks/results/pamc_clustering.md``. Data come from ``../shared/data`` (or
``--data-root``); data sets that are absent are skipped and said so in the report.

- Data sets with features: Citeseer in its SDCN version (``clustering/cite_sdcn``), Cora
  (Planetoid raw files in ``graphs/cora``) and a generated attributed SBM (always available).
- Graph-only data sets: the SDCN graphs and labels of USPS, HHAR, Reuters, ACM and DBLP
  (``clustering/sdcn``), whose feature files were not obtainable. Their node features are FastRP
  embeddings (d=128) of the same graph, so their figures are not comparable with the paper's.
- Methods, each seed in a fresh process (peak memory is the resident memory the fit adds):
  PamC with the authors' per-data-set hyperparameters (their README), the exact all-pairs loss
  (SCGC*, ``loss="pairwise"``) with its README hyperparameters, k-means on the features, k-means
  on graph-smoothed features (SGC, K=2), and scikit-learn's SpectralClustering on the graph.
  ACC/NMI/ARI/F1 of PamC and SCGC* are the final epoch's; the label-selected figure (best epoch
  per metric, chosen with the true labels, as the paper reports) is shown beside it, labelled.
- Scaling on generated graphs (n = 1k, 3.3k, 10k, 100k): time and memory of the contrastive loss
  alone (forward and backward) for PamC and all-pairs, and the peak memory of whole fits.
- The authors' code (with ``--authors-code PATH``, a checkout of gayanku/PAMC): their PamC training on
  Citeseer beside ours on the same SDCN-pretrained autoencoders, one per seed (``_pamc_authors.py``);
  without it, their Citeseer figures are the curator's one run quoted in the issue.

Run: ``python benchmarks/pamc_clustering.py [--quick] [--authors-code PATH]`` (single-threaded: the full
run takes a few hours on one core, the side-by-side runs about 7 minutes a seed more).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from _common import added_peak_memory, machine_summary, run_in_fresh_process, save_report, verdict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "pamc_clustering.md"

# gayanku/PAMC README: train.py --model SCGC_TRIMPOSCCSP --influence (PamC) and --model SCGC_TRIM
# --influence (SCGC*, the all-pairs loss). Cora and the generated SBM take Citeseer's.
PAMC_CONFIG = {
    "usps": dict(alpha=2.0, beta=2.0, order=4, tau=0.5, lr=1e-3),
    "hhar": dict(alpha=0.5, beta=12.5, order=2, tau=1.5, lr=1e-3),
    "reut": dict(alpha=1.0, beta=0.2, order=1, tau=0.25, lr=1e-4),
    "acm": dict(alpha=0.5, beta=0.5, order=1, tau=0.5, lr=1e-3),
    "dblp": dict(alpha=2.0, beta=2.0, order=1, tau=1.0, lr=1e-3),
    "cite": dict(alpha=2.0, beta=2.5, order=3, tau=0.5, lr=1e-3),
}
PAIRWISE_CONFIG = {
    "usps": dict(alpha=4.0, beta=0.1, order=4, tau=0.25, lr=1e-3),
    "hhar": dict(alpha=1.0, beta=10.0, order=3, tau=2.25, lr=1e-3),
    "reut": dict(alpha=0.5, beta=0.1, order=3, tau=0.25, lr=1e-3),
    "acm": dict(alpha=1.0, beta=0.1, order=1, tau=0.25, lr=1e-3),
    "dblp": dict(alpha=1.0, beta=0.1, order=1, tau=0.25, lr=1e-3),
    "cite": dict(alpha=1.0, beta=0.1, order=1, tau=0.25, lr=1e-4),
}
# The curator's run of the authors' code on Citeseer (issue text): label-selected best epoch, one seed.
AUTHORS_CITESEER = {
    "pamc": dict(acc=0.676, nmi=0.426, ari=0.394, f1=0.585, seconds=560.0, peak_gb=0.99),
    "pairwise": dict(acc=0.701, nmi=0.441, ari=0.444, f1=0.605, seconds=1011.0, peak_gb=1.33),
}
FEATURE_SETS = ("cite", "sbm", "cora")
GRAPH_ONLY_SETS = ("acm", "dblp", "usps", "reut", "hhar")
NAMES = {"sbm": "Attributed SBM (generated)", "cite": "Citeseer (SDCN)", "cora": "Cora (Planetoid)",
         "usps": "USPS (kNN graph, k=3)", "hhar": "HHAR (kNN graph, k=5)", "reut": "Reuters (kNN graph, k=3)",
         "acm": "ACM", "dblp": "DBLP"}
N_CLUSTERS = {"usps": 10, "hhar": 6, "reut": 4, "acm": 3, "dblp": 4, "cite": 6, "cora": 7, "sbm": 5}
KNN = {"usps": 3, "hhar": 5, "reut": 3}
METHODS = ("pamc", "pairwise", "kmeans", "sgc", "spectral")
METHOD_NAMES = {"pamc": "PamC", "pairwise": "all-pairs loss (SCGC*)", "kmeans": "k-means on features",
                "sgc": "k-means on SGC features (K=2)", "spectral": "SpectralClustering on the graph"}
METRICS = ("acc", "nmi", "ari", "f1")
AUTHORS_METHODS = ("authors", "pamc-ae", "pamc-ae-inertia")
AUTHORS_NAMES = {"authors": "authors' code (their k-means start: least inertia; 200 epochs)",
                 "pamc-ae": "ours, defaults (modularity start; stopping rule)",
                 "pamc-ae-inertia": "ours, the reference's start (least inertia) and its 200 epochs (`tol=0`)"}
SBM = dict(n_nodes=3000, n_clusters=5, avg_degree=10, homophily=0.8, n_features=100, feature_signal=2.0)
SCALING_N = (1000, 3327, 10000, 100000)
SCALING_N_QUICK = (500, 2000)


# -- data ---------------------------------------------------------------------------------------

def load_dataset(name: str, data_root: Path, quick: bool):
    """``(X, graph, y, n_clusters)`` or None when the files are absent."""
    from graphkit import Graph, make_attributed_sbm

    if name == "sbm":
        config = dict(SBM, n_nodes=600) if quick else SBM
        data = make_attributed_sbm(**config, random_state=0)
        return data.features, data.graph, data.labels, N_CLUSTERS[name]
    if name == "cite":
        folder = data_root / "clustering" / "cite_sdcn"
        if not (folder / "cite_features.npz").exists():
            return None
        import scipy.sparse as sp

        X = sp.csr_matrix(np.load(folder / "cite_features.npz")["x"].astype(np.float32))
        y = np.loadtxt(folder / "cite_label.txt", dtype=np.int64)
        edges = np.loadtxt(folder / "cite_graph.txt", dtype=np.int64)
        return X, Graph.from_edges(edges[:, 0], edges[:, 1], n_nodes=len(y)), y, N_CLUSTERS[name]
    if name == "cora":
        folder = data_root / "graphs" / "cora" / "planetoid_raw"
        if not (folder / "ind.cora.x").exists():
            return None
        import scipy.sparse as sp
        from torch_geometric.io import read_planetoid_data

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = read_planetoid_data(str(folder), "cora")
        X = sp.csr_matrix(data.x.numpy())
        graph = Graph.from_pyg(data.edge_index, num_nodes=data.num_nodes, directed=False)
        return X, graph, data.y.numpy().astype(np.int64), N_CLUSTERS[name]
    folder = data_root / "clustering" / "sdcn"
    graph_file = folder / "graph" / f"{name}{KNN.get(name, '')}_graph.txt"
    label_file = folder / "data" / f"{name}_label.txt"
    if not (graph_file.exists() and label_file.exists()):
        return None
    from graphkit import FastRP

    y = np.loadtxt(label_file, dtype=np.int64)
    edges = np.loadtxt(graph_file, dtype=np.int64)
    graph = Graph.from_edges(edges[:, 0], edges[:, 1], n_nodes=len(y), self_loops="drop")
    X = FastRP(n_components=128, random_state=0, device="cpu").fit_transform(graph)
    return X, graph, y, N_CLUSTERS[name]


def deep_config(dataset: str, method: str, quick: bool) -> dict:
    table = PAMC_CONFIG if method == "pamc" else PAIRWISE_CONFIG
    config = dict(table.get(dataset, table["cite"]))
    config.update(loss=method, n_epochs=200, pretrain_epochs=30, device="cpu", verbose=0)
    if quick:
        config.update(n_epochs=3, pretrain_epochs=1)
    return config


# -- one run in a fresh process -----------------------------------------------------------------

def run_child(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec.get("threads", 1))
    if "scaling" in spec:
        return scaling_child(spec)
    if spec.get("method") in AUTHORS_METHODS:
        return authors_child(spec)
    loaded = load_dataset(spec["dataset"], Path(spec["data_root"]), spec["quick"])
    X, graph, y, k = loaded
    method, seed = spec["method"], spec["seed"]
    from graphkit.metrics import clustering_scores

    warm_up(method)
    result: dict = {}
    training_cpu = time_training_cpu()
    with added_peak_memory() as peak:
        started, started_cpu = time.perf_counter(), time.process_time()
        labels, model = fit_method(method, X, graph, y, k, seed, spec)
        result["fit_seconds"] = time.perf_counter() - started
        result["fit_cpu_seconds"] = time.process_time() - started_cpu
    result["peak_bytes"] = peak["bytes"]
    result["final"] = clustering_scores(y, labels)
    if model is not None:
        result["train_seconds"] = model.history_[-1]["seconds"]
        result["train_cpu_seconds"] = training_cpu["seconds"]
        result["epochs"] = model.n_iter_
        result["selected"] = {m: max(record[m] for record in model.history_) for m in METRICS}
        result["init"] = {m: model.history_[0][m] for m in METRICS}
    return result


def authors_child(spec: dict) -> dict:
    """One seed of the side-by-side runs: the authors' code, or ours, on the seed's pretrained autoencoder."""
    import _pamc_authors as authors

    from graphkit.metrics import clustering_scores

    X, graph, y, k = load_dataset("cite", Path(spec["data_root"]), False)
    edges = np.loadtxt(Path(spec["data_root"]) / "clustering" / "cite_sdcn" / "cite_graph.txt", dtype=np.int64)
    folder = authors.prepare_folder(Path(spec["work_dir"]), spec["seed"], X.toarray(), y, edges,
                                    epochs=1 if spec["quick"] else 30)
    if spec["method"] == "authors":
        return authors.run_authors(Path(spec["authors_code"]), folder, spec["seed"], epochs=3 if spec["quick"] else 200)
    from graphkit import PamC

    config = deep_config("cite", "pamc", spec["quick"])
    config.update(pretrain_epochs=0, encoder=authors.encoder_from_autoencoder(folder / "data" / "cite.pkl", X.shape[1]),
                  init_selection="inertia" if spec["method"] == "pamc-ae-inertia" else "modularity")
    if spec["method"] == "pamc-ae-inertia":  # the reference's run, step for step: its start and all its epochs
        config.update(tol=0.0)
    warm_up("pamc")
    training_cpu = time_training_cpu()
    with added_peak_memory() as peak:
        started = time.process_time()
        model = PamC(n_clusters=k, random_state=spec["seed"], **config).fit(X, y, graph=graph)
        fit_cpu = time.process_time() - started
    return {"final": clustering_scores(y, model.labels_),
            "selected": {m: max(record[m] for record in model.history_) for m in METRICS},
            "init": {m: model.history_[0][m] for m in METRICS}, "train_cpu_seconds": training_cpu["seconds"],
            "fit_cpu_seconds": fit_cpu, "peak_bytes": peak["bytes"], "epochs": model.n_iter_}


def time_training_cpu() -> dict:
    """Record the CPU time of ``PamC._train`` (the training epochs) into the returned dict.

    With one thread, CPU time is what the work costs, whatever else the machine runs; the wall
    time is kept beside it.
    """
    from graphkit import PamC

    measured = {"seconds": None}
    original = PamC._train

    def timed(self, *args, **kwargs):
        started = time.process_time()
        history = original(self, *args, **kwargs)
        measured["seconds"] = time.process_time() - started
        return history

    PamC._train = timed
    return measured


def warm_up(method: str) -> None:
    """Import-time and first-call costs, outside the measured block."""
    from sklearn.cluster import KMeans

    from graphkit import PamC

    rng = np.random.default_rng(0)
    small = rng.standard_normal((40, 5))
    if method in ("pamc", "pairwise"):
        PamC(n_clusters=2, hidden=(8,), n_z=2, pretrain_epochs=1, n_epochs=1, n_init=1, verbose=0,
             device="cpu", loss=method).fit(small)
    else:
        KMeans(2, n_init=1).fit(small)


def fit_method(method, X, graph, y, k, seed, spec):
    from sklearn.cluster import KMeans, SpectralClustering

    from graphkit import PamC
    from graphkit.ops import sgc_features

    if method in ("pamc", "pairwise"):
        model = PamC(n_clusters=k, random_state=seed, **deep_config(spec["dataset"], method, spec["quick"]))
        model.fit(X, y, graph=graph)
        return model.labels_, model
    if method == "kmeans":
        return KMeans(k, n_init=10, random_state=seed).fit_predict(X), None
    if method == "sgc":
        return KMeans(k, n_init=10, random_state=seed).fit_predict(sgc_features(X, graph, n_hops=2)), None
    adjacency = graph.adjacency.maximum(graph.adjacency.T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Graph is not fully connected" on Citeseer and Cora
        spectral = SpectralClustering(k, affinity="precomputed", random_state=seed, assign_labels="kmeans")
        return spectral.fit_predict(adjacency), None


def scaling_child(spec: dict) -> dict:
    """Time and peak memory of the contrastive loss alone, or of a short fit, at ``n`` nodes."""
    import torch

    from graphkit import PamC, make_attributed_sbm
    from graphkit.ops import normalized_adjacency, rhop_adjacency
    from graphkit.pamc import _pair_tensors, negative_term, pairwise_contrastive_loss, positive_term

    n, loss = spec["scaling"], spec["loss"]
    data = make_attributed_sbm(n_nodes=n, n_clusters=6, avg_degree=10, homophily=0.8, n_features=32,
                               feature_signal=2.0, random_state=0)
    if spec["what"] == "fit":
        model = PamC(n_clusters=6, hidden=(256, 256), n_z=10, pretrain_epochs=1, n_epochs=3, n_init=1, loss=loss,
                     random_state=0, device="cpu", verbose=0)
        PamC(n_clusters=2, hidden=(8,), n_z=2, pretrain_epochs=1, n_epochs=1, n_init=1, verbose=0, device="cpu",
             loss=loss).fit(data.features[:50], graph=None)
        with added_peak_memory() as peak:
            model.fit(data.features, graph=data.graph)
        return {"peak_bytes": peak["bytes"], "epoch_seconds": model.history_[-1]["seconds"] / model.n_iter_}
    a_r = rhop_adjacency(normalized_adjacency(data.graph, self_loops=True, symmetrize=True), 1)
    rows, cols, values = _pair_tensors(a_r, torch.device("cpu"), torch.float32)
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(n, 10, generator=generator, requires_grad=True)
    assignments = torch.randint(0, 6, (n,), generator=generator)

    def step():
        if loss == "pamc":
            value = positive_term(z, rows, cols, values, 0.5) + negative_term(z, assignments, 6, 0.5)
        else:
            value = pairwise_contrastive_loss(z, rows, cols, values, 0.5)
        value.backward()
        z.grad = None

    step()  # warm-up
    with added_peak_memory() as peak:
        step()
    repeats = spec["repeats"] if not (loss == "pairwise" and n > 20000) else 1
    times = []
    for _ in range(repeats):
        started = time.process_time()
        step()
        times.append(time.process_time() - started)
    return {"seconds": statistics.median(times), "peak_bytes": peak["bytes"], "nnz": int(a_r.nnz), "repeats": repeats}


# -- the main process ---------------------------------------------------------------------------

def summarize(runs: list) -> dict:
    ok = [r for r in runs if "error" not in r]
    summary: dict = {"n": len(ok), "errors": [r["error"] for r in runs if "error" in r]}
    if not ok:
        return summary
    for part in ("final", "selected", "init"):
        if part in ok[0]:
            summary[part] = {m: (statistics.mean(r[part][m] for r in ok), statistics.pstdev(r[part][m] for r in ok))
                             for m in METRICS}
    for key in ("fit_seconds", "fit_cpu_seconds", "train_seconds", "train_cpu_seconds", "peak_bytes", "epochs"):
        if key in ok[0]:
            summary[key] = statistics.mean(r[key] for r in ok)
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=10, help="seeds for Citeseer and Cora")
    parser.add_argument("--other-seeds", type=int, default=3,
                        help="seeds for the generated SBM and the graph-only data sets")
    parser.add_argument("--datasets", nargs="*", default=None,
                        help=f"any of {', '.join(FEATURE_SETS + GRAPH_ONLY_SETS)} (default: all; quick: sbm, cite)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each measuring process")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="one seed, 3 epochs, small scaling sizes (a smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from the JSON record beside --out, running nothing (the data sets "
                             "it lacks are listed as not yet measured)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse what the JSON record beside --out holds (written after every step)")
    parser.add_argument("--authors-code", type=Path,
                        default=Path(os.environ["PAMC_REFERENCE"]) if os.environ.get("PAMC_REFERENCE") else None,
                        help="a checkout of github.com/gayanku/PAMC (default: $PAMC_REFERENCE): run their PamC on "
                             "Citeseer beside ours, on the same pretrained autoencoders (about 4 minutes of one core "
                             "per seed for theirs)")
    parser.add_argument("--authors-seeds", type=int, nargs="*", default=None,
                        help="seeds of the side-by-side runs (default: 0 .. --seeds - 1)")
    parser.add_argument("--authors-work-dir", type=Path, default=None,
                        help="where the SDCN-format files and the pretrained autoencoders go (default: a folder "
                             "in the system's temporary directory)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    if args.datasets is None:
        args.datasets = ["sbm", "cite"] if args.quick else list(FEATURE_SETS + GRAPH_ONLY_SETS)
    if args.quick:
        args.seeds = args.other_seeds = 1

    # the scaling runs first, then one data set after another; the report and a JSON record of the raw
    # figures are rewritten after each step, so an interrupted run keeps what it measured (--resume)
    record_path = args.out.with_suffix(".json")
    record = json.loads(record_path.read_text()) if (args.resume or args.report_only) and record_path.exists() else {}
    record.setdefault("results", {})
    record.setdefault("sizes", {})
    if args.skip_scaling:
        record["scaling"] = record.get("scaling", [])
    elif not record.get("scaling"):
        record["scaling"] = measure_scaling(args)
        save_record(record_path, record)
    results, sizes, scaling, missing = record["results"], record["sizes"], record["scaling"], []
    if args.report_only:
        pending = [d for d in args.datasets if d not in results]
        write_report(args, {d: results[d] for d in args.datasets if d in results}, missing, sizes, scaling, pending,
                     record.get("authors"))
        print(f"wrote {args.out}")
        return 0
    for position, dataset in enumerate(args.datasets):
        pending = list(args.datasets[position + 1:])
        if dataset in results:
            print(f"{dataset}: from {record_path}", flush=True)
            continue
        loaded = load_dataset(dataset, args.data_root, args.quick)
        if loaded is None:
            missing.append(dataset)
            print(f"{dataset}: not found under {args.data_root}, skipped", flush=True)
            continue
        X, graph, y, k = loaded
        sizes[dataset] = (X.shape[0], X.shape[1], graph.n_edges, k)
        seeds = args.seeds if dataset in ("cite", "cora") else args.other_seeds
        by_method = {}
        for method in METHODS:
            runs = []
            for seed in range(seeds):
                spec = dict(dataset=dataset, method=method, seed=seed, quick=args.quick,
                            data_root=str(args.data_root), threads=args.threads)
                runs.append(run_in_fresh_process(__file__, "--child", json.dumps(spec)))
                last = runs[-1]
                shown = "error: " + last["error"] if "error" in last else \
                    " ".join(f"{m} {last['final'][m]:.3f}" for m in METRICS) + f" ({last['fit_seconds']:.1f} s)"
                print(f"{dataset} {method} seed {seed}: {shown}", flush=True)
            by_method[method] = summarize(runs)
        results[dataset] = by_method
        save_record(record_path, record)
        write_report(args, {d: results[d] for d in args.datasets if d in results}, missing, sizes, scaling, pending,
                     record.get("authors"))
    if args.authors_code is not None:
        measure_authors(args, record, record_path)
    write_report(args, {d: results[d] for d in args.datasets if d in results}, missing, sizes, scaling, [],
                 record.get("authors"))
    print(f"wrote {args.out}")
    return 0


def measure_authors(args, record: dict, record_path: Path) -> None:
    """Their code and ours, seed by seed, on the same autoencoders; kept in the record as they finish."""
    import tempfile

    if not (args.authors_code / "train.py").exists():
        raise SystemExit(f"--authors-code: no train.py in {args.authors_code}")
    if not (args.data_root / "clustering" / "cite_sdcn" / "cite_features.npz").exists():
        print("authors' code: Citeseer not found, skipped", flush=True)
        return
    work_dir = args.authors_work_dir or Path(tempfile.gettempdir()) / "pamc_authors"
    runs = record.setdefault("authors", {})
    seeds = args.authors_seeds if args.authors_seeds is not None else range(args.seeds)
    for seed in seeds:
        for method in AUTHORS_METHODS:
            key = f"{method}/{seed}"
            if key in runs:
                continue
            spec = dict(method=method, seed=seed, quick=args.quick, data_root=str(args.data_root),
                        threads=args.threads, work_dir=str(work_dir), authors_code=str(args.authors_code))
            runs[key] = run_in_fresh_process(__file__, "--child", json.dumps(spec))
            last = runs[key]
            shown = "error: " + last["error"] if "error" in last else \
                " ".join(f"{m} {last['final'][m]:.3f}" for m in METRICS) + f" ({last['train_cpu_seconds']:.1f} s CPU)"
            print(f"cite {method} seed {seed}: {shown}", flush=True)
            save_record(record_path, record)


def save_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(record, indent=1))
    partial.replace(path)


def measure_scaling(args) -> list:
    rows = []
    for n in (SCALING_N_QUICK if args.quick else SCALING_N):
        row: dict = {"n": n}
        for loss in ("pamc", "pairwise"):
            for what in ("loss", "fit"):
                spec = dict(scaling=n, loss=loss, what=what, repeats=3 if args.quick else 5, threads=args.threads)
                row[f"{loss}_{what}"] = run_in_fresh_process(__file__, "--child", json.dumps(spec))
                print(f"scaling n={n} {loss} {what}: {row[f'{loss}_{what}']}", flush=True)
        rows.append(row)
    return rows


# -- the report ---------------------------------------------------------------------------------

def fmt(pair) -> str:
    return f"{pair[0]:.3f} ± {pair[1]:.3f}"


def mib(value) -> str:
    return "–" if value is None else f"{value / 2**20:.0f}"


def authors_summary(authors) -> dict | None:
    """The side-by-side runs, on the seeds where all three finished: per method, ``summarize`` and the runs."""
    if not authors:
        return None
    by_method = {method: {} for method in AUTHORS_METHODS}
    for key, run in authors.items():
        method, seed = key.rsplit("/", 1)
        if method in by_method and "error" not in run:
            by_method[method][int(seed)] = run
    seeds = sorted(set.intersection(*(set(runs) for runs in by_method.values())))
    if not seeds:
        return None
    summary: dict = {"seeds": seeds}
    for method, runs in by_method.items():
        summary[method] = dict(summarize([runs[seed] for seed in seeds]), runs=[runs[seed] for seed in seeds])
    return summary


def authors_section(summary: dict) -> list:
    seeds = summary["seeds"]
    lines = [
        f"## Citeseer: the authors' code beside ours, on the same pretrained autoencoders ({len(seeds)} seeds)",
        "",
        "Each seed pretrains one SDCN autoencoder (SDCN's recipe: 30 epochs, Adam 1e-3, batches of 256, seeded); "
        "the authors' PamC (`train.py` of gayanku/PAMC, `SCGC_TRIMPOSCCSP --influence`, their README's Citeseer "
        "arguments, 200 epochs, profiler off) and `PamC` (`pretrain_epochs=0`, the same hyperparameters) both start "
        "from its encoder; each picks its own k-means start (20 runs). Every clustering is scored with "
        "`graphkit.metrics`; the authors' final is the last epoch their loop evaluates (before its last step). "
        "Ours runs with `PamC`'s defaults (training stops by DEC's label-free rule, `tol=1e-3` over "
        "`tol_interval=10` epochs) and, to check the implementation step for step, with their start rule and all 200 "
        "epochs. Train s: CPU seconds of the training epochs in a one-threaded process (their loop's own clock, "
        "reading CPU time). Epochs: mean number of training epochs run. "
        "Peak: resident memory the training call added.",
        "",
        "| run | ACC | NMI | ARI | F1 | train s (CPU) | epochs | peak MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method in AUTHORS_METHODS:
        part_summary = summary[method]
        for part, label in (("final", "final epoch"), ("selected", "label-selected best epoch"),
                            ("init", "k-means start (epoch 0)")):
            extra = (f" | {part_summary['train_cpu_seconds']:.1f} | {part_summary['epochs']:.0f} | "
                     f"{mib(part_summary['peak_bytes'])} |"
                     if part == "final" else " | | | |")
            lines.append(f"| {AUTHORS_NAMES[method]}, {label} | "
                         + " | ".join(fmt(part_summary[part][m]) for m in METRICS) + extra)
    lines += ["", "ACC per seed: k-means start -> final epoch (label-selected).", "",
              "| seed | " + " | ".join(AUTHORS_NAMES[m] for m in AUTHORS_METHODS) + " |",
              "|---|" + "---|" * len(AUTHORS_METHODS)]
    for i, seed in enumerate(seeds):
        cells = [f"{r['init']['acc']:.3f} -> {r['final']['acc']:.3f} ({r['selected']['acc']:.3f})"
                 for r in (summary[m]["runs"][i] for m in AUTHORS_METHODS)]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    theirs = [r["final"]["acc"] for r in summary["authors"]["runs"]]
    paired = []
    for method in AUTHORS_METHODS[1:]:
        differences = [r["final"]["acc"] - t for r, t in zip(summary[method]["runs"], theirs)]
        paired.append(f"{AUTHORS_NAMES[method]} {statistics.mean(differences):+.3f} ± "
                      f"{statistics.pstdev(differences):.3f}")
    lines += ["", "Final ACC, ours minus theirs, paired by autoencoder (mean ± std over seeds): "
              + "; ".join(paired) + "."]
    collapsed = [seed for seed, r in zip(seeds, summary["authors"]["runs"]) if r["final"]["nmi"] < 1e-6]
    if collapsed:
        lines += ["", f"The authors' run ended as one cluster for {len(collapsed)} of {len(seeds)} seeds "
                  f"({', '.join(map(str, collapsed))}): once a cluster before a non-empty one empties, their "
                  "meta-node cosine divides 0 by 0 and the loss turns NaN; their label-selected figure keeps the "
                  "epochs before that."]
    lines.append("")
    return lines


def write_report(args, results, missing, sizes, scaling, pending, authors=None) -> None:
    import scipy
    import sklearn
    import torch

    today = datetime.date.today().isoformat()
    lines = [
        "# PamC: block-contrastive graph clustering",
        "",
        f"Written by `benchmarks/pamc_clustering.py` on {today}"
        + (" (**quick mode**: one seed, 3 epochs, 1 pretraining epoch: a smoke test, not results)." if args.quick
           else "."),
        "",
        f"- Machine: {machine_summary()}; every run in a fresh process with {args.threads} torch thread(s); "
        f"Python {platform.python_version()}, torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
        f"scipy {scipy.__version__}, numpy {np.__version__}.",
        "- PamC and the all-pairs loss (SCGC*): the reference MLP encoder 500-500-2000-10 pretrained as an SDCN "
        "autoencoder (30 epochs, Adam 1e-3, batches of 256), k-means on its embedding (the best of 20 runs by the "
        "modularity of its partition on the graph, `PamC`'s default `init_selection`; the reference takes the "
        "least inertia), then "
        "full-batch Adam epochs until DEC's label-free stopping rule (fewer than 0.1% of the assignments changed "
        "over 10 epochs; at most 200, the reference's fixed count); the per-data-set hyperparameters of the "
        "authors' README "
        "(PamC: `SCGC_TRIMPOSCCSP`, SCGC*: `SCGC_TRIM`, both `--influence`); Cora and the SBM take Citeseer's.",
        "- **final**: the clustering of the epoch training stopped at (what `PamC.labels_` holds). "
        "**label-selected**: per metric, the best of the epochs run, chosen with the true labels, the paper's "
        "protocol; shown for comparison only.",
        "- Times: `train` is the training epochs (what the authors' clock measures), `fit` the whole fit "
        "(pretraining, k-means and training; for the baselines the whole method). CPU seconds of the one-threaded "
        "process (the machine is shared, so the wall time, also shown for the fit, can be longer). Peak: "
        "resident memory the fit added in its own process (VmHWM).",
        "- Graph-only data sets have no features here; their node features are FastRP embeddings (d=128) of "
        "the same graph, so their numbers are not comparable with the paper's.",
        "",
    ]
    if missing:
        lines += [f"Not found under `{args.data_root}` and skipped: {', '.join(missing)}.", ""]
    if pending:
        lines += [f"**Not measured in this run** (the report was written before they ran; `--resume` continues "
                  f"it): {', '.join(pending)}.", ""]

    side_by_side = authors_summary(authors)
    lines += goals_section(results, scaling, side_by_side)
    if side_by_side:
        lines += authors_section(side_by_side)
    for dataset, by_method in results.items():
        n, d, m, k = sizes[dataset]
        seeds = next(iter(by_method.values()))["n"]
        lines += [f"## {NAMES[dataset]}: {n} nodes, {m} edges, {d} features, {k} clusters ({seeds} seeds)", "",
                  "| method | ACC | NMI | ARI | F1 | train s (CPU) | fit s (CPU) | fit s (wall) | peak MiB |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for method in METHODS:
            summary = by_method[method]
            if summary["n"] == 0:
                lines.append(f"| {METHOD_NAMES[method]} | failed: {summary['errors'][:1]} | | | | | | | |")
                continue
            train = f"{summary['train_cpu_seconds']:.1f}" if "train_cpu_seconds" in summary else "–"
            label = METHOD_NAMES[method] + (", final epoch" if "selected" in summary else "")
            lines.append(f"| {label} | " + " | ".join(fmt(summary["final"][m]) for m in METRICS)
                         + f" | {train} | {summary['fit_cpu_seconds']:.1f} | {summary['fit_seconds']:.1f} "
                         f"| {mib(summary['peak_bytes'])} |")
            if "selected" in summary:
                lines.append(f"| {METHOD_NAMES[method]}, label-selected best epoch | "
                             + " | ".join(fmt(summary["selected"][m]) for m in METRICS) + " | | | | |")
                lines.append(f"| {METHOD_NAMES[method]}, k-means start (epoch 0) | "
                             + " | ".join(fmt(summary["init"][m]) for m in METRICS) + " | | | | |")
        if dataset == "cite":
            for method, ref in AUTHORS_CITESEER.items():
                lines.append(f"| authors' code, {METHOD_NAMES[method]}, label-selected, 1 seed (curator's run) | "
                             + " | ".join(f"{ref[m]:.3f}" for m in METRICS)
                             + f" | {ref['seconds']:.0f} (wall) | | | {ref['peak_gb'] * 1024:.0f} (whole process) |")
        lines.append("")
    if scaling:
        lines += scaling_section(scaling)
    lines += [
        "## Notes",
        "",
        "- The curator's figures for the authors' code (one run, label-selected, 560 s wall, thread count not "
        "recorded) are quoted from the issue; "
        + ("the side-by-side section above ran their code here, one thread, on the same autoencoders as ours."
           if side_by_side else "their code was not run in this report (`--authors-code` runs it beside ours)."),
        "- Where the speed-up comes from, and its ceiling: both implementations spend their time in the same "
        "3703-500-500-2000-10 MLP on Citeseer's 3327 rows. Theirs multiplies the dense features by the first layer "
        "(6.2 GMAC a pass) and runs two forward passes an epoch (one for the target p, one to train); ours "
        "multiplies the sparse features (about 105k non-zeros, 0.05 GMAC) and reuses the training pass for p. "
        "That is about 35 against 13 GMAC an epoch, 2.8x less arithmetic, and one core of this CPU runs both near "
        "its float32 peak (about 80 GFLOP/s each), so epoch for epoch, at equal threads and precision, about 2.8x "
        "is the ceiling. The rest of the speed-up is fewer epochs: theirs always runs 200 (they choose the "
        "reported epoch with the labels afterwards); ours stops once the clustering has settled, by DEC's "
        "label-free rule, and its final figures are at least theirs (the goals above). The curator's 560 s "
        "for their code was wall time with the thread count not recorded; measured here at one thread it is "
        "the CPU time above.",
        "- Like every DEC-style method, PamC depends on its k-means start on the pretrained embedding; the "
        "standard deviations over seeds include that (the `k-means start` rows show where training began). "
        "Choosing the start by modularity instead of inertia (PamC's default since this report) raised PamC's "
        "final ACC / NMI / ARI / F1 on Citeseer from 0.630 / 0.399 / 0.381 / 0.544 with the inertia start (the same "
        "10 seeds; the report of commit 11eeadf) to the figures above.",
        "- PamC's cost is linear in n for a fixed size of the r-hop neighbourhoods, which grow like the degree to "
        "the power r: on the generated SBM (average degree 10) Citeseer's r=3 stores about 800 entries of A_r per "
        "node (2.4 million in all, against n^2 = 9 million pairs), so there PamC's positive term costs more than "
        "the all-pairs loss with SCGC*'s r=1; on Citeseer itself A_3 has 44 entries per node.",
        "- Our all-pairs loss runs the n x n similarities in row blocks with a hand-written backward pass, so "
        "its memory is linear in n; the reference's dense version needs n^2 floats per matrix "
        "(40 GB at n = 100k).",
    ]
    save_report(args.out, lines)


def goals_section(results, scaling, side_by_side=None) -> list:
    lines = ["## Goals", ""]
    if side_by_side:
        theirs, ours = side_by_side["authors"], side_by_side["pamc-ae"]
        for part, label in (("final", "final epoch"), ("selected", "label-selected, as they report")):
            ok = all(ours[part][m][0] >= theirs[part][m][0] for m in METRICS)
            lines.append(
                f"- At least the authors' accuracy on Citeseer, their code run here on the same "
                f"{len(side_by_side['seeds'])} pretrained autoencoders ({label}, mean ACC / NMI / ARI / F1): theirs "
                + " / ".join(f"{theirs[part][m][0]:.3f}" for m in METRICS) + ", ours "
                + " / ".join(f"{ours[part][m][0]:.3f}" for m in METRICS) + f" ({verdict(ok)}).")
        speedup = theirs["train_cpu_seconds"] / ours["train_cpu_seconds"]
        same_work = side_by_side["pamc-ae-inertia"]
        lines.append(
            f"- At least 5x faster than the authors' code on Citeseer, side by side on the CPU (one thread each): their "
            f"{theirs['epochs']:.0f} epochs take {theirs['train_cpu_seconds']:.1f} s of CPU; ours, with its defaults, "
            f"{ours['train_cpu_seconds']:.1f} s ({ours['epochs']:.0f} epochs on average, stopped by the label-free rule), "
            f"{speedup:.1f}x ({verdict(speedup >= 5)}). Epoch for epoch (ours run for all {same_work['epochs']:.0f}, "
            f"`tol=0`): {same_work['train_cpu_seconds']:.1f} s, "
            f"{theirs['train_cpu_seconds'] / same_work['train_cpu_seconds']:.1f}x.")
    cite = results.get("cite")
    if cite and cite["pamc"]["n"]:
        pamc = cite["pamc"]
        ref = AUTHORS_CITESEER["pamc"]
        final_ok = all(pamc["final"][m][0] >= ref[m] for m in METRICS)
        selected_ok = all(pamc["selected"][m][0] >= ref[m] for m in METRICS)
        lines.append(
            f"- At least the curator's run of the authors' code on Citeseer ({ref['acc']:.3f} / {ref['nmi']:.3f} / "
            f"{ref['ari']:.3f} / {ref['f1']:.3f}, label-selected, one seed): ours with our own pretraining, final epoch, mean over {pamc['n']} seeds, "
            + " / ".join(f"{pamc['final'][m][0]:.3f}" for m in METRICS) + f" ({verdict(final_ok)}); label-selected, "
            + " / ".join(f"{pamc['selected'][m][0]:.3f}" for m in METRICS) + f" ({verdict(selected_ok)}).")
        speedup = ref["seconds"] / pamc["train_cpu_seconds"]
        lines.append(
            f"- At least 5x faster than the curator's run of the authors' code on Citeseer (their 200 epochs): "
            f"training takes {pamc['train_cpu_seconds']:.1f} s of one core ({pamc['epochs']:.0f} epochs on average) (wall {pamc['train_seconds']:.1f} s on the shared machine) "
            f"against their {ref['seconds']:.0f} s, {speedup:.1f}x ({verdict(speedup >= 5)}); with pretraining and "
            f"k-means, the whole fit takes {pamc['fit_cpu_seconds']:.1f} s ({ref['seconds'] / pamc['fit_cpu_seconds']:.1f}x). "
            "(Their figure is the curator's wall-clock measurement, thread count not recorded; ours uses one thread.)")
    else:
        lines.append("- Citeseer goals: not measured (data absent).")
    if scaling:
        ratios = [row["pairwise_loss"].get("seconds", float("nan")) / row["pamc_loss"].get("seconds", float("nan"))
                  for row in scaling]
        growing = all(b > a for a, b in zip(ratios, ratios[1:]))
        lines.append("- Time ratio all-pairs / PamC of the loss growing with n: "
                     + ", ".join(f"n={row['n']}: {r:.1f}x" for row, r in zip(scaling, ratios)) + f" ({verdict(growing)}).")
        per_node = [row["pamc_fit"].get("peak_bytes", float("nan")) / row["n"] for row in scaling]
        linear = per_node[-1] <= 1.5 * per_node[-2] if len(per_node) >= 2 else False
        lines.append("- Memory linear in n (PamC fit, bytes per node): "
                     + ", ".join(f"n={row['n']}: {b / 1024:.1f} KiB" for row, b in zip(scaling, per_node))
                     + f"; the largest size uses at most 1.5x the per-node memory of the one before ({verdict(linear)}).")
    lines.append("")
    return lines


def scaling_section(scaling) -> list:
    lines = [
        "## Scaling on generated graphs",
        "",
        "Attributed SBM, 6 blocks, average degree 10, homophily 0.8; `A_r` = `A_hat` (order 1); embeddings "
        "z of 10 dimensions. Loss: forward and backward of the contrastive term alone (PamC: positive + "
        "negative term; all-pairs: Graph-MLP's loss), median CPU time of 5 runs after a warm-up (one run for all-pairs "
        "above 20k nodes), one thread. Fit: PamC with a 256-256-10 MLP on 32 features, 1 pretraining epoch, "
        "3 epochs; peak is the resident memory the call added.",
        "",
        "| n | nnz(A_r) | PamC loss ms | all-pairs loss ms | all-pairs / PamC | PamC loss peak MiB | "
        "all-pairs loss peak MiB | PamC fit peak MiB | all-pairs fit peak MiB | PamC s/epoch (wall) | all-pairs s/epoch (wall) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in scaling:
        pamc, pair = row["pamc_loss"], row["pairwise_loss"]
        fit_pamc, fit_pair = row["pamc_fit"], row["pairwise_fit"]
        if any("error" in r for r in (pamc, pair, fit_pamc, fit_pair)):
            errors = [r["error"] for r in (pamc, pair, fit_pamc, fit_pair) if "error" in r]
            lines.append(f"| {row['n']} | failed: {errors[0]} | | | | | | | | | |")
            continue
        lines.append(
            f"| {row['n']} | {pamc['nnz']} | {pamc['seconds'] * 1e3:.1f} | {pair['seconds'] * 1e3:.1f} | "
            f"{pair['seconds'] / pamc['seconds']:.1f} | {mib(pamc['peak_bytes'])} | {mib(pair['peak_bytes'])} | "
            f"{mib(fit_pamc['peak_bytes'])} | {mib(fit_pair['peak_bytes'])} | {fit_pamc['epoch_seconds']:.3f} | "
            f"{fit_pair['epoch_seconds']:.3f} |")
    lines += ["", "The issue's measurement of the loss alone: PamC 5.2x faster than all-pairs at n = 3.3k and 13.5x "
              "at n = 10k.", ""]
    return lines


if __name__ == "__main__":
    sys.exit(main())
