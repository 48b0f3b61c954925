"""CTR models against deepctr-torch, and their low-rank compression: AFM against weight SVD."""

from __future__ import annotations

import statistics

from .harness import Benchmark, Column, Dataset, Goal, Method, Reference, Table
from .paths import shared_data

CONFIG = dict(embed_dim=16, hidden=(400, 400, 400), cross_layers=3, batch_size=256, max_epochs=10,
              learning_rate=1e-3, validation_fraction=0.1, patience=2)
QUICK_CONFIG = dict(CONFIG, hidden=(64, 64), cross_layers=2, batch_size=512, max_epochs=2)
SYNTHETIC_ROWS, QUICK_SYNTHETIC_ROWS = 600_000, 20_000
CALIBRATION_ROWS = 200_000
RATIOS = (2, 3, 5, 10)
FINETUNE_RATIOS = (5,)
GOAL_RATIOS = (3, 5)
PEER_MARGIN = 0.002        # "matches deepctr-torch": our AUC at most this much lower
AUC_MARGIN = 0.001         # the paper's claim: AUC no lower than the uncompressed model's
ML, SYNTHETIC = "MovieLens-100K", "synthetic Criteo-like"


# -- data ----------------------------------------------------------------------------------------

def random_split(n: int, seed: int, test_fraction: float = 0.2):
    import numpy as np

    order = np.random.RandomState(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def load_movielens(quick: bool):
    """ML-100K as CTR (label = rating >= 4), a random 80/20 split per seed; quick: a small generated
    categorical stand-in (the categorical fields of a synthetic Criteo-like log)."""
    from recsys.ctr.data import load_movielens_ctr

    if quick:
        from recsys.datasets import make_criteo_like

        frame = make_criteo_like(n_samples=10_000, max_cardinality=300, random_state=0)
        X, y = frame[[c for c in frame.columns if c.startswith("C")][:8]], frame["label"].to_numpy()
    else:
        frame = load_movielens_ctr(shared_data("recsys", "ml-100k"))
        X, y = frame.drop(columns=["label", "timestamp"]), frame["label"].to_numpy()
    return {"X": X, "y": y, "split": "random", "config": QUICK_CONFIG if quick else CONFIG,
            "calibration": None, "batches": (1, 256) if quick else (1, 4096), "rounds": 1 if quick else 3,
            "models": {}}


def load_synthetic(quick: bool):
    """``make_criteo_like`` (random_state=0): first 80% of the rows train, the last 20% test."""
    from recsys.datasets import make_criteo_like
    from recsys.metrics import roc_auc

    n = QUICK_SYNTHETIC_ROWS if quick else SYNTHETIC_ROWS
    frame, truth = make_criteo_like(n_samples=n, max_cardinality=2_000 if quick else 50_000, return_truth=True,
                                    random_state=0)
    n_train = int(0.8 * n)
    config = dict(QUICK_CONFIG if quick else CONFIG, batch_size=2048, max_epochs=2 if quick else 4)
    return {"X": frame.drop(columns="label"), "y": frame["label"].to_numpy(), "split": "ordered",
            "n_train": n_train, "config": config, "calibration": CALIBRATION_ROWS,
            "batches": (1, 256) if quick else (1, 4096), "rounds": 1 if quick else 3, "models": {},
            "bayes_auc": roc_auc(frame["label"].to_numpy()[n_train:], truth.logits[n_train:])}


def parts(data: dict, seed: int):
    """``(X_train, y_train, X_test, y_test)`` of the seed."""
    import numpy as np

    X, y = data["X"], data["y"]
    if data["split"] == "random":
        train, test = random_split(len(y), seed)
    else:
        train, test = np.arange(data["n_train"]), np.arange(data["n_train"], len(y))
    return X.iloc[train], y[train], X.iloc[test], y[test]


# -- ours and the peer ---------------------------------------------------------------------------

def fit_ours(kind: str, data: dict, seed: int, meter=None):
    from recsys import CTRClassifier

    X_train, y_train, _, _ = parts(data, seed)
    clf = CTRClassifier(model=kind, random_state=seed, device="cpu", verbose=0, **data["config"])
    if meter is None:
        return clf.fit(X_train, y_train)
    with meter:
        clf.fit(X_train, y_train)
    return clf


def ours(data, *, split, seed, meter, model):
    """Train (early stopping on 10% of the training rows, best weights kept) and score on the test rows."""
    from recsys.ctr import count_parameters
    from recsys.metrics import log_loss, roc_auc

    clf = fit_ours(model, data, seed, meter)
    if model == "deepfm":
        data["models"][seed] = clf   # the compression methods of this seed start from it
    _, _, X_test, y_test = parts(data, seed)
    prob = clf.predict_proba(X_test)[:, 1]
    params = count_parameters(clf.module())
    metrics = {"auc": roc_auc(y_test, prob), "logloss": log_loss(y_test, prob), "epochs": len(clf.history_),
               "best_epoch": clf.best_epoch_, "params": params, "mbytes": 4 * params / 1e6}
    if "bayes_auc" in data:
        metrics["bayes_auc"] = data["bayes_auc"]
    return metrics


def peer(data, *, split, seed, meter, model):
    from ._ctr_compression_peer import fit_and_score

    X_train, y_train, X_test, y_test = parts(data, seed)
    return fit_and_score(model, X_train, y_train, X_test, y_test, data["config"], seed, meter)


# -- compression ---------------------------------------------------------------------------------

def latencies(before, after, inputs, batches, rounds: int) -> dict:
    """Median latency (ms) per batch size of both modules, measured alternately (shared-CPU noise hits both)
    after an untimed warm-up of each."""
    from recsys.ctr import measure_latency

    out = {}
    for batch, tag in zip(batches, ("b1", "large")):
        for module in (before, after):  # first-call costs (allocator, kernels) outside the rounds
            measure_latency(module, inputs, batch, min_time=0.05)
        a, b = [], []
        for _ in range(rounds):
            a.append(measure_latency(before, inputs, batch, min_time=0.1))
            b.append(measure_latency(after, inputs, batch, min_time=0.1))
        out[f"latency_{tag}_before_ms"] = 1e3 * statistics.median(a)
        out[f"latency_{tag}_after_ms"] = 1e3 * statistics.median(b)
        out[f"latency_{tag}_ratio"] = statistics.median(b) / statistics.median(a)
    return out


def rank_summary(ranks: dict) -> dict:
    embedding = [rank for name, rank in ranks.items() if name.startswith("embeddings")]
    mlp = {f"rank_mlp{name.split('linear')[1]}": rank for name, rank in ranks.items() if name.startswith("mlp")}
    return {"embedding_tables_compressed": len(embedding),
            "embedding_rank_mean": statistics.fmean(embedding) if embedding else 0.0, **mlp}


def compressed(data, *, split, seed, meter, how, ratio, finetune=0):
    """The seed's trained DeepFM compressed ``ratio`` x by ``how`` (calibrated on the training rows)."""
    from recsys.ctr import compress, evaluate_compression

    clf = data["models"].get(seed) or data["models"].setdefault(seed, fit_ours("deepfm", data, seed))
    X_train, y_train, X_test, y_test = parts(data, seed)
    if data["calibration"] is not None:
        X_train, y_train = X_train.iloc[:data["calibration"]], y_train[:data["calibration"]]
    with meter:
        small = compress(clf, X_train, method=how, ratio=ratio, y_calibration=y_train, finetune_epochs=finetune,
                         random_state=0)
    report = evaluate_compression(clf, small, X_test, y_test, latency_batches=())
    timing = latencies(clf.module(), small.module(), clf.encode(X_test), data["batches"], data["rounds"])
    return {"auc": report["auc_after"], "logloss": report["logloss_after"], "auc_before": report["auc_before"],
            "delta_auc": report["auc_after"] - report["auc_before"], "ratio": report["ratio"],
            "params": report["params_after"], "mbytes": report["bytes_after"] / 1e6, **timing,
            **rank_summary(report["ranks"])}


def compression_methods() -> list:
    methods = [Method(f"{how.upper()} {ratio}x", compressed, settings={"how": how, "ratio": ratio})
               for how in ("afm", "svd") for ratio in RATIOS]
    methods += [Method(f"{how.upper()} {ratio}x + 1 epoch fine-tuning", compressed,
                       settings={"how": how, "ratio": ratio, "finetune": 1}, datasets=[ML])
                for how in ("afm", "svd") for ratio in FINETUNE_RATIOS]
    return methods


# -- goals ---------------------------------------------------------------------------------------

def peer_gap(ours_name: str, peer_name: str):
    return lambda r, seed: (r.value("auc", method=ours_name, dataset=ML, seed=seed)
                            - r.value("auc", method=peer_name, dataset=ML, seed=seed))


def of(metric: str, method: str, dataset: str):
    return lambda r, seed: r.value(metric, method=method, dataset=dataset, seed=seed)


def compression_goals() -> list:
    goals = []
    for dataset in (ML, SYNTHETIC):
        for ratio in GOAL_RATIOS:
            afm = f"AFM {ratio}x"
            goals += [
                Goal(f"{dataset}, AFM {ratio}x smaller: AUC change at least -{AUC_MARGIN}", of("delta_auc", afm, dataset),
                     ">=", -AUC_MARGIN, tolerance=0.0005, fmt="{:+.4f}"),
                Goal(f"{dataset}, AFM {ratio}x smaller: faster at the large batch (latency after / before)",
                     of("latency_large_ratio", afm, dataset), "<", 1.0, tolerance=0.1, fmt="{:.3f}"),
                Goal(f"{dataset}, AFM {ratio}x smaller: faster at batch 1 (latency after / before)",
                     of("latency_b1_ratio", afm, dataset), "<", 1.0, tolerance=0.1, fmt="{:.3f}"),
                Goal(f"{dataset}, weight SVD {ratio}x smaller: AUC change", of("delta_auc", f"SVD {ratio}x", dataset),
                     ">=", -AUC_MARGIN, tolerance=0.0005, fmt="{:+.4f}", kind="context"),
            ]
    return goals


# -- the spec ------------------------------------------------------------------------------------

MODEL_COLUMNS = [Column("auc", "test AUC"), Column("logloss", "test log loss"),
                 Column("epochs", "epochs run", "{:.1f}"), Column("best_epoch", "best epoch", "{:.1f}"),
                 Column("params", "parameters", "{:,.0f}", "mean"),
                 Column("seconds", "training s (median)", "{:.1f}", "median")]
COMPRESSION_COLUMNS = [
    Column("ratio", "size reduction achieved", "{:.2f}", "mean"), Column("params", "parameters", "{:,.0f}", "mean"),
    Column("mbytes", "MB", "{:.2f}", "mean"), Column("auc", "test AUC"), Column("delta_auc", "ΔAUC (paired)", "{:+.4f}"),
    Column("logloss", "test log loss"),
    Column("latency_b1_before_ms", "b=1 ms before", "{:.3f}", "median"),
    Column("latency_b1_after_ms", "b=1 ms after", "{:.3f}", "median"),
    Column("latency_large_before_ms", "large batch ms before", "{:.2f}", "median"),
    Column("latency_large_after_ms", "large batch ms after", "{:.2f}", "median"),
    Column("embedding_rank_mean", "mean embedding rank", "{:.1f}", "mean"),
    Column("rank_mlp0", "MLP ranks 0", "{:.0f}", "median"), Column("rank_mlp1", "1", "{:.0f}", "median"),
    Column("rank_mlp2", "2", "{:.0f}", "median"),
    Column("seconds", "compress s (median)", "{:.2f}", "median"),
]
COMPRESSED = ["ours DeepFM"] + [method.name for method in compression_methods()]

BENCHMARK = Benchmark(
    name="ctr_compression",
    title="CTR models and their low-rank compression: AFM against weight SVD",
    description="""
- Compression: `recsys.ctr.compress`, after Yu, Fu, Ding, Zhou, Wu, *Unified Low-rank Compression Framework for Click-through Rate Prediction* (KDD 2024, arXiv 2405.18146). AFM (Atomic Feature Mimicking): each MLP layer y = Wx + b becomes U_rᵀW, U_rᵀb followed by U_r, (I − U_rU_rᵀ)μ, with μ and U_r the mean and top principal directions of y on the calibration data (the training rows); each embedding table E is stored as (E − μ)U_r and restored as E'U_rᵀ + μ. DeepFM's FM term needs the full vectors, so the up-projection is kept. Weight SVD: truncated SVD of W and E. Targets: the embedding tables and the three MLP layers; the first-order weights and the head are kept. `ratio=k` asks for at most 1/k of the parameters; the ranks come from one spectral-energy threshold shared by all targets (our rule; the paper sets ranks by hand), so AFM and SVD reach the same size with different ranks. Fine-tuning (at 5x, ML-100K): one epoch of Adam 1e-4 on the training rows.
- (a) MovieLens-100K as CTR (`../shared/data/recsys/ml-100k`, label = rating ≥ 4; user, item, age, gender, occupation, zip code, release year and first genre as categorical fields), a random 80/20 split per seed (the seed also drives initialisation and batch order). Ours (`recsys.CTRClassifier`, DeepFM and DCN-V2) and deepctr-torch 0.3.0's `DeepFM` and `DCN(cross_parameterization="matrix")` (DCN-M = DCN-V2; it also adds first-order terms, which ours does not; its defaults otherwise: L2 1e-5 on embeddings and linear weights, embedding init std 1e-4), fed the same integer codes (our vocabulary, fitted on the training split). Both: embedding width 16, MLP (400, 400, 400), 3 cross layers, Adam 1e-3, batch 256, at most 10 epochs. The only setting chosen is the epoch count, by early stopping on the log loss of 10% of the training rows (patience 2, best weights kept): a validation split held out of training, for ours and the peer alike; the test rows are scored once. The rest is the configuration of the old benchmark, used as given. deepctr-torch asks PyPI for a newer release on import; that request is answered locally (no network). Without the package its rows are marked unavailable.
- (b) Each seed's DeepFM compressed 2x, 3x, 5x and 10x by AFM and by weight SVD, and at 5x with one epoch of fine-tuning.
- (c) A synthetic Criteo-like log (`recsys.datasets.make_criteo_like(n_samples=600000, random_state=0)`: 13 dense and 26 categorical fields with power-law cardinalities up to 50,000, Zipf frequencies, 10% missing values and a planted rank-4 factorization-machine structure); the first 80% of the rows train, the last 20% test; the model seed varies, the data does not. DeepFM as above but batch 2048, at most 4 epochs; calibration on the first 200,000 training rows; no fine-tuning. `bayes_auc` is the planted model's own test AUC (the ceiling).
- Latency: one forward pass of the PyTorch module on the CPU, one thread, inference mode, encoded test inputs in memory, at batch 1 and at the large batch (4,096 rows; 256 in quick mode); median of ≥ 5 timed passes after 2 warm-ups, in three interleaved rounds (before, after, before, ...), and the median of those. Time of a compression row: the `compress` call. Sizes: float32 parameters (MB = 4 × parameters / 10⁶).
- Seeds: eight. The peer's test AUC varies from seed to seed by several thousandths (its early stopping ends anywhere from epoch 4 to 10), so the peer goals need eight seeds for the standard error of the mean difference to approach their tolerance, 0.003; the compression goals' per-seed AUC changes vary far less (tolerance 0.0005).
- Quick mode: a 10,000-row categorical stand-in for ML-100K (8 categorical fields of a synthetic Criteo-like log), 20,000 synthetic rows, a (64, 64) MLP, 2 epochs, one latency round at batch 256.
""",
    datasets=[Dataset(ML, load_movielens, params={"data": "ml-100k"},
                      description="MovieLens-100K as CTR; a small generated stand-in in quick mode"),
              Dataset(SYNTHETIC, load_synthetic, params={"data": "synthetic"},
                      description="make_criteo_like, 600,000 rows (20,000 in quick mode)")],
    methods=[
        Method("ours DeepFM", ours, settings={"model": "deepfm"}, description="recsys.CTRClassifier(model='deepfm')"),
        Method("ours DCN-V2", ours, settings={"model": "dcnv2"}, datasets=[ML],
               description="recsys.CTRClassifier(model='dcnv2')"),
        Method("deepctr-torch DeepFM", peer, settings={"model": "deepfm"}, kind="peer", datasets=[ML]),
        Method("deepctr-torch DCN (matrix)", peer, settings={"model": "dcn"}, kind="peer", datasets=[ML]),
        *compression_methods(),
    ],
    seeds=tuple(range(8)),
    quick_seeds=(0,),
    threads=1,
    goals=[
        Goal(f"{ML}, our DeepFM's AUC at most {PEER_MARGIN} below deepctr-torch's (ours - theirs)",
             peer_gap("ours DeepFM", "deepctr-torch DeepFM"), ">=", -PEER_MARGIN, tolerance=0.003, fmt="{:+.4f}"),
        Goal(f"{ML}, our DCN-V2's AUC at most {PEER_MARGIN} below deepctr-torch's DCN-M (ours - theirs)",
             peer_gap("ours DCN-V2", "deepctr-torch DCN (matrix)"), ">=", -PEER_MARGIN, tolerance=0.003, fmt="{:+.4f}"),
        *compression_goals(),
        Goal(f"{ML}, AFM 5x + 1 epoch fine-tuning: AUC change", of("delta_auc", "AFM 5x + 1 epoch fine-tuning", ML),
             ">=", -AUC_MARGIN, tolerance=0.0005, fmt="{:+.4f}", kind="context"),
        Goal(f"{ML}, SVD 5x + 1 epoch fine-tuning: AUC change", of("delta_auc", "SVD 5x + 1 epoch fine-tuning", ML),
             ">=", -AUC_MARGIN, tolerance=0.0005, fmt="{:+.4f}", kind="context"),
    ],
    references=[
        Reference("deepctr-torch DeepFM", "ML-100K as CTR", {"AUC": 0.7807},
                  "the CTR compression issue's author, their own run; not run here"),
        Reference("AFM sketch, embedding rank 2 of 16", "ML-100K as CTR", {"AUC": 0.7803},
                  "the CTR compression issue's author, their own run; not run here"),
        Reference("weight SVD, same size", "ML-100K as CTR", {"AUC": 0.7797},
                  "the CTR compression issue's author, their own run; not run here"),
    ],
    tables=[
        Table("(a) Our models against deepctr-torch on MovieLens-100K as CTR", MODEL_COLUMNS, datasets=[ML],
              methods=["ours DeepFM", "ours DCN-V2", "deepctr-torch DeepFM", "deepctr-torch DCN (matrix)"]),
        Table("(b) Compressing the DeepFM on MovieLens-100K", COMPRESSION_COLUMNS, datasets=[ML], methods=COMPRESSED,
              note="The first row is the uncompressed DeepFM (its seconds: training). ΔAUC is paired by seed (compressed minus its own "
                   "uncompressed model); latencies are medians over seeds; ranks are the mean embedding rank over "
                   "the compressed tables and the median rank of each MLP layer."),
        Table("(c) The DeepFM on synthetic Criteo-like data",
              [*MODEL_COLUMNS, Column("bayes_auc", "planted model's AUC", "{:.4f}", "mean")],
              datasets=[SYNTHETIC], methods=["ours DeepFM"]),
        Table("(c) Compressing the DeepFM on synthetic Criteo-like data", COMPRESSION_COLUMNS, datasets=[SYNTHETIC],
              methods=COMPRESSED, note="As in (b)."),
    ],
)
