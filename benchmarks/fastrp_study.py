"""FastRP on the shared graphs it was not tuned on: how beta, the iteration weights, the dimension
and the normalisation move node-classification accuracy, beside the Rust package, NetMF and
Laplacian eigenmaps (issue 39)."""

from __future__ import annotations

from ._fastrp_study_data import load_graph, score_embedding
from ._fastrp_study_peers import laplacian_eigenmaps, netmf, rust_fastrp
from .harness import Benchmark, Column, Dataset, Goal, Method, Table

GRAPHS = ("BlogCatalog", "Cora", "Citeseer", "PubMed", "DBLP")
SMALL_GRAPHS = ("BlogCatalog", "Cora", "Citeseer")   # where NetMF's dense n x n matrix fits
DESCRIPTIONS = {
    "BlogCatalog": "BlogCatalog (`graphs/blogcatalog/blogcatalog.mat`): 10,312 nodes, 333,983 edges, 39 labels (multi-label)",
    "Cora": "Cora (`graphs/cora`, Planetoid edges): 2,708 nodes, 5,278 edges, 7 classes",
    "Citeseer": "Citeseer (`graphs/citeseer`): 3,327 nodes, 4,552 edges, 6 classes, 15 nodes unlabelled (scored only on the labelled)",
    "PubMed": "PubMed (`graphs/pubmed`): 19,717 nodes, 44,324 edges, 3 classes",
    "DBLP": "DBLP co-authorship from HARP (`graphs/harp-dblp/dblp.mat`, weighted): 27,199 nodes, 66,832 edges, 4 classes",
}
DEFAULTS, README = "FastRP, today's defaults", "FastRP, the README's BlogCatalog settings"
SPECTRAL = "FastRP + spectral propagation"
SEARCH, SEARCH_SPECTRAL = "FastRPSearchCV", "FastRPSearchCV + spectral propagation"
SEARCH_WIDE = "FastRPSearchCV, wide grid + spectral propagation"
WIDE_GRID = {"normalization_strength": (-1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0), "n_components": (128, 512),
             "iteration_weights": ((0.0, 1.0, 1.0), (0.0, 1.0, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 6.67))}
AUTO, AUTO_SPECTRAL = "FastRP, auto (label-free)", "FastRP, auto + spectral propagation"
NETMF = ("NetMF (T=1)", "NetMF (T=10, h=256)")
RUST_SAME, RUST_ALIGNED = "Rust fastrp, the same weights", "Rust fastrp, powers aligned"
BETAS = (-1.0, -0.64, -0.25, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
WEIGHTS = ("1", "0,1", "0,1,1", "1,1,1", "0,0,1", "0,1,1,1", "1,1,1,1", "0,0,1,6.67")
STUDY = {"FastRP, beta": {"normalization_strength": BETAS},
         "FastRP, iteration weights": {"weights": WEIGHTS},
         "FastRP, dimension": {"n_components": (128, 256, 512)},
         "FastRP, per-iterate normalisation": {"normalize": (True, False)},
         "FastRP, self influence": {"self_influence": (0.0, 0.5, 1.0)}}
METRICS = [Column("micro_f1", "Micro-F1"), Column("macro_f1", "Macro-F1")]


def parse_weights(text: str) -> tuple | str:
    return text if text == "auto" else tuple(float(weight) for weight in text.split(","))


def fastrp(data, *, split, seed, meter, weights="0,1,1", **settings):
    """``graphkit.FastRP`` with its defaults but for ``settings``; the fit timed. With an ``"auto"``
    setting, the chosen beta and number of iteration weights are kept too."""
    from graphkit import FastRP, Graph

    graph = Graph.from_scipy(data["adjacency"])
    with meter:
        model = FastRP(iteration_weights=parse_weights(weights), random_state=seed, device="cpu", verbose=0,
                       **settings).fit(graph)
    scores = score_embedding(model.embedding_, data, split, seed)
    if model.auto_results_ is not None:
        scores.update(chosen_beta=model.normalization_strength_, chosen_weights=float(len(model.iteration_weights_)),
                      chosen_last_weight=model.iteration_weights_[-1],
                      link_auc=float(model.auto_results_["auc"][model.auto_results_["best_index"]]))
    return scores


def rust(data, *, split, seed, meter, weights):
    with meter:
        embedding = rust_fastrp(data["adjacency"], 128, parse_weights(weights), seed)
    return score_embedding(embedding, data, split, seed)


def search(data, *, split, seed, meter, spectral_propagation=False, grid="default"):
    """``FastRPSearchCV`` with its default grid (or ``WIDE_GRID``) on the labels of the split's training nodes only."""
    from graphkit import FastRP, FastRPSearchCV, Graph

    from ._fastrp_study_data import split_nodes

    graph = Graph.from_scipy(data["adjacency"])
    train, _ = split_nodes(data, split, seed)
    with meter:
        model = FastRPSearchCV(FastRP(random_state=seed, device="cpu", verbose=0,
                                      spectral_propagation=spectral_propagation),
                               WIDE_GRID if grid == "wide" else None, random_state=seed)
        model.fit(graph, data["targets"][train], nodes=data["labelled"][train])
    return {**score_embedding(model.embedding_, data, split, seed),
            "chosen_beta": float(model.best_params_["normalization_strength"]),
            "chosen_weights": float(len(model.best_params_["iteration_weights"])),
            "chosen_dimension": float(model.best_params_.get("n_components", 128)),
            "search_score": float(model.best_score_)}


def netmf_embedding(data, *, split, seed, meter, window, rank):
    with meter:
        embedding = netmf(data["adjacency"], 128, window, rank, 1.0, seed)
    return score_embedding(embedding, data, split, seed)


def eigenmaps(data, *, split, seed, meter):
    with meter:
        embedding = laplacian_eigenmaps(data["adjacency"], 128, seed)
    return score_embedding(embedding, data, split, seed)


def margin(metric, method, other, dataset):
    return lambda results, seed: (results.value(metric, method=method, dataset=dataset, seed=seed)
                                  - results.value(metric, method=other, dataset=dataset, seed=seed))


def netmf_margin(method, dataset):
    """``method``'s Micro-F1 less the better NetMF's (T=1 or T=10) at that seed."""
    return lambda results, seed: (results.value("micro_f1", method=method, dataset=dataset, seed=seed)
                                  - max(results.value("micro_f1", method=netmf, dataset=dataset, seed=seed)
                                        for netmf in NETMF))


def netmf_time_ratio(method, dataset):
    """``method``'s seconds over the faster NetMF's at that seed."""
    return lambda results, seed: (results.value("seconds", method=method, dataset=dataset, seed=seed)
                                  / min(results.value("seconds", method=netmf, dataset=dataset, seed=seed)
                                        for netmf in NETMF))


def time_ratio(method, other, dataset):
    return lambda results, seed: (results.value("seconds", method=method, dataset=dataset, seed=seed)
                                  / results.value("seconds", method=other, dataset=dataset, seed=seed))


def default_goals() -> list:
    """The issue's goals for the defaults: a label-free choice replaces today's defaults only if it
    scores at least as well on every shared graph and a fit stays within 1.2x of today's time."""
    goals = []
    for name in GRAPHS:
        goals += [Goal(f"{name}: the label-free auto settings at least today's defaults (auto - defaults, Micro-F1)",
                       margin("micro_f1", AUTO, DEFAULTS, name), ">=", 0.0, tolerance=0.01, fmt="{:+.3f}"),
                  Goal(f"{name}: today's defaults at least the Rust package at the same weights (ours - Rust, Micro-F1)",
                       margin("micro_f1", DEFAULTS, RUST_SAME, name), ">=", 0.0, tolerance=0.01, fmt="{:+.3f}")]
    goals.append(Goal("BlogCatalog: a fit with the auto settings within 1.2x of today's default fit (seconds, auto / defaults)",
                      time_ratio(AUTO, DEFAULTS, "BlogCatalog"), "<=", 1.2, tolerance=0.1, fmt="{:.2f}"))
    for name in SMALL_GRAPHS:
        for method in (AUTO, AUTO_SPECTRAL):
            goals.append(Goal(f"{name}: {method} against NetMF (the better of T=1 and T=10; auto - NetMF, Micro-F1)",
                              netmf_margin(method, name), ">=", 0.0, tolerance=0.01, fmt="{:+.3f}", kind="context"))
    return goals


def label_aware_goals() -> list:
    goals = []
    for method in (SEARCH, SEARCH_SPECTRAL, SEARCH_WIDE):
        for name in SMALL_GRAPHS:
            goals += [Goal(f"{name}: {method}'s Micro-F1 at least NetMF's (the better of T=1 and T=10; search - NetMF)",
                           netmf_margin(method, name), ">=", 0.0, tolerance=0.01, fmt="{:+.3f}"),
                      Goal(f"{name}: {method} (search and refit) under 1/50 of NetMF's time (the faster NetMF; ratio)",
                           netmf_time_ratio(method, name), "<=", 0.02, tolerance=0.005, fmt="{:.3f}"),
                      Goal(f"{name}: {method}'s time over NetMF T=10's",
                           lambda r, seed, method=method, name=name: (
                               r.value("seconds", method=method, dataset=name, seed=seed)
                               / r.value("seconds", method=NETMF[1], dataset=name, seed=seed)),
                           "<=", 0.02, tolerance=0.005, fmt="{:.3f}", kind="context")]
    return goals


def datasets(quick: bool) -> list:
    names = GRAPHS[:1] if quick else GRAPHS
    return [Dataset(name, load_graph(name), description=DESCRIPTIONS[name]) for name in names]


def study_methods() -> list:
    return [Method(name, fastrp, grid=grid, select="micro_f1",
                   description=f"defaults but {', '.join(grid)}, every value scored on validation")
            for name, grid in STUDY.items()]


def study_tables() -> list:
    return [Table(f"Validation: {name}", columns=[METRICS[0]], rows=("settings",), pivot="dataset",
                  split="validation", methods=[name],
                  note="Micro-F1 on the validation nodes (mean ± std over seeds), every other setting at today's defaults.")
            for name in STUDY]


BENCHMARK = Benchmark(
    name="fastrp_study",
    title="FastRP on graphs it was not tuned on: the settings, the Rust package, NetMF",
    description="""
- Estimator: `graphkit.FastRP` (Chen et al., *Fast and Accurate Network Embeddings via Very Sparse Random Projection*, CIKM 2019), float32, CPU. Today's defaults: d = 128, iteration weights (0, 1, 1) on M, M^2, M^3, beta (`normalization_strength`) 0, every iterate L2-normalised per row, the sum standardised per column, no self influence.
- Data: the five shared graphs with node labels (BlogCatalog multi-label; Cora, Citeseer, PubMed, DBLP one class per node). The embedding is always of the whole graph, without labels.
- Protocol: each seed shuffles the labelled nodes; half are test nodes. On the test split a classifier trains on the other half (the 50% training of DeepWalk's and FastRP's protocol); on the validation split it trains on one quarter and is scored on another, so settings are chosen without the test nodes. The classifier: the embedding's columns standardised on the training nodes, one-vs-rest logistic regression (C = 0.1 as in the FastRP paper's protocol; scikit-learn's L-BFGS solver, which at d = 512 on BlogCatalog takes 4 s where liblinear takes 115), each scored node given its k best labels (k = its number of labels). The seed also draws the random projection. 5 seeds.
- Study: each `FastRP, <setting>` method varies one setting around today's defaults; every value is scored on validation (the validation tables), and the value best on validation is the only one scored on test.
- Peers: the PyPI Rust package `fastrp` 0.1.1 (no beta, no per-iterate normalisation or standardisation, its first weight on the random vectors themselves) with today's weights as given (0, 1, 1) and with the powers aligned to ours (0, 0, 1, 1); NetMF (Qiu et al., WSDM 2018; `_fastrp_study_peers.netmf`, written for this benchmark from the paper) at T = 1 exactly and at T = 10 from 256 eigenpairs, b = 1, d = 128, on the graphs whose dense n x n matrix fits here; Laplacian eigenmaps (scikit-learn's `spectral_embedding`, d = 128).
- Label-aware: `graphkit.FastRPSearchCV` with its default grid (beta in -1, -0.5, 0, 0.5, 1, 2; iteration weights (0, 1, 1), (0, 1, 1, 1), (0, 0, 1, 1), (0, 0, 1, 6.67)) scores every combination by ridge regression over 3 random splits of the split's training nodes (never the scored nodes), then refits the best; with spectral propagation, the refitted best is filtered by ProNE's spectral propagation (Zhang et al., IJCAI 2019; `graphkit.spectral_propagation`, order 10, mu 0.2, theta 0.5 as the authors' code), which is also run alone on today's defaults. The wide grid adds beta = 3 and the dimension (128 or 512) and filters the refitted best.
- Label-free: `FastRP(normalization_strength="auto", iteration_weights="auto")` holds out 10% of the edges (at most 10,000), embeds the rest with every beta in -1, -0.5, 0, 0.5, 1, 2 and every weighting of the search's grid, and fits the whole graph with the candidate whose cosine similarities best tell the held-out edges from as many random node pairs (ROC AUC); no label is used. It replaces today's defaults only if it meets both default goals: at least today's Micro-F1 on every shared graph, and a fit within 1.2x of today's time on BlogCatalog.
- Time: one fit (the embedding only, not the classifier; for the search, the search and the refit), in this process, one thread.
""",
    datasets=datasets,
    methods=[
        Method(DEFAULTS, fastrp, description="FastRP() as shipped"),
        Method(README, fastrp, settings={"n_components": 512, "weights": "0,0,1,6.67", "normalization_strength": -0.64},
               quick={"n_components": 64}, description="d = 512, weights (0, 0, 1, 6.67), beta = -0.64 (the authors' BlogCatalog settings)"),
        *study_methods(),
        Method(RUST_SAME, rust, settings={"weights": "0,1,1"}, kind="peer"),
        Method(RUST_ALIGNED, rust, settings={"weights": "0,0,1,1"}, kind="peer"),
        Method("NetMF (T=1)", netmf_embedding, settings={"window": 1, "rank": None}, kind="peer", datasets=SMALL_GRAPHS),
        Method("NetMF (T=10, h=256)", netmf_embedding, settings={"window": 10, "rank": 256}, quick={"rank": 16},
               kind="peer", datasets=SMALL_GRAPHS),
        Method("Laplacian eigenmaps", eigenmaps, kind="peer", datasets=SMALL_GRAPHS),
        Method(SPECTRAL, fastrp, settings={"spectral_propagation": True},
               description="today's defaults, then ProNE's spectral propagation (order 10, mu 0.2, theta 0.5)"),
        Method(AUTO, fastrp, settings={"weights": "auto", "normalization_strength": "auto"},
               description="beta and iteration weights chosen by link prediction on held-out edges (no labels)"),
        Method(AUTO_SPECTRAL, fastrp, settings={"weights": "auto", "normalization_strength": "auto",
                                                "spectral_propagation": True},
               description="the same, then ProNE's spectral propagation"),
        Method(SEARCH, search, description="graphkit.FastRPSearchCV, default grid (beta x iteration weights), on the training nodes' labels"),
        Method(SEARCH_SPECTRAL, search, settings={"spectral_propagation": True},
               description="the same search, the refitted best filtered by ProNE's spectral propagation"),
        Method(SEARCH_WIDE, search, settings={"spectral_propagation": True, "grid": "wide"},
               description="beta also 3, dimension 128 or 512, the refitted best filtered by spectral propagation"),
    ],
    seeds=(0, 1, 2, 3, 4),
    goals=default_goals() + label_aware_goals() + [goal for name in GRAPHS for goal in (
        Goal(f"{name}: today's defaults against the Rust package with the powers aligned (ours - Rust, Micro-F1)",
             margin("micro_f1", DEFAULTS, RUST_ALIGNED, name), ">=", 0.0, tolerance=0.01, fmt="{:+.3f}", kind="context"),
        Goal(f"{name}: FastRPSearchCV against today's defaults (search - defaults, Micro-F1)",
             margin("micro_f1", SEARCH, DEFAULTS, name), ">=", 0.0, tolerance=0.01, fmt="{:+.3f}", kind="context"),
        Goal(f"{name}: spectral propagation added to today's defaults (with - without, Micro-F1)",
             margin("micro_f1", SPECTRAL, DEFAULTS, name), ">=", 0.0, tolerance=0.01, fmt="{:+.3f}", kind="context"),
    )],
    tables=[
        Table("Test: Micro-F1 / Macro-F1 at 50% training", columns=METRICS, pivot="dataset"),
        Table("Time of one fit (seconds)", columns=[Column("seconds", "s", "{:.3f}", aggregate="median")], pivot="dataset",
              note="For FastRPSearchCV: the whole search and the refit of the best."),
        Table("What FastRPSearchCV chose (on the training nodes' labels)",
              columns=[Column("chosen_beta", "beta", "{:.2f}"), Column("chosen_weights", "number of weights", "{:.1f}"),
                       Column("chosen_dimension", "dimension", "{:.0f}"),
                       Column("search_score", "its validation Micro-F1 (ridge)", "{:.3f}")],
              pivot="dataset", methods=[SEARCH, SEARCH_SPECTRAL, SEARCH_WIDE]),
        Table("What the label-free auto settings chose (link prediction on held-out edges)",
              columns=[Column("chosen_beta", "beta", "{:.2f}"), Column("chosen_weights", "number of weights", "{:.1f}"),
                       Column("chosen_last_weight", "last weight", "{:.2f}"),
                       Column("link_auc", "held-out link AUC", "{:.3f}")],
              pivot="dataset", methods=[AUTO, AUTO_SPECTRAL]),
        *study_tables(),
    ],
)
