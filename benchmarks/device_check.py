"""Every estimator fitted on the CPU and on CUDA with the same data and seed: agreement, time, GPU memory.

CI has no GPU, so this benchmark is how the CUDA path of the toolkit is exercised: run it on a
machine with one. Without CUDA the CUDA data sets are unavailable and only the CPU side runs.
"""

from __future__ import annotations

from functools import partial

from . import _device_check_checks as checks
from .harness import Benchmark, Column, Dataset, Goal, Method, Table, Unavailable
from .paths import shared_data

CPU, CUDA, QUICK = "cpu", "cuda", "cpu (quick: a few checks)"
GOWALLA, DIGITS = "Gowalla on cuda", "digits on cuda"


def require_cuda() -> None:
    from tensorkit.backend import cuda_available

    if not cuda_available():
        raise Unavailable("no CUDA device")


def device_loader(device: str):
    def load(quick: bool):
        if device == CUDA:
            require_cuda()
        return {"device": device}
    return load


def load_gowalla(quick: bool):
    require_cuda()
    from recsys.data import read_lightgcn_split

    train, test = read_lightgcn_split(shared_data("recsys", "gowalla"))
    return {"device": CUDA, "train": train, "test": test}


def load_digits(quick: bool):
    require_cuda()
    from sklearn.datasets import load_digits as digits
    from sklearn.preprocessing import StandardScaler

    X, y = digits(return_X_y=True)
    return {"device": CUDA, "X": StandardScaler().fit_transform(X), "y": y}


def datasets(quick: bool) -> list:
    if quick:
        return [Dataset(QUICK, device_loader(CPU), params={"device": CPU},
                        description="the CPU side of a few checks, a smoke test")]
    return [
        Dataset(CPU, device_loader(CPU), params={"device": CPU}, description="every check on the CPU"),
        Dataset(CUDA, device_loader(CUDA), params={"device": CUDA}, description="every check on CUDA"),
        Dataset(GOWALLA, load_gowalla, params={"device": CUDA},
                description="Gowalla, the LightGCN split (`../shared/data/recsys/gowalla`), on CUDA only"),
        Dataset(DIGITS, load_digits, params={"device": CUDA},
                description="scikit-learn's digits, standardised, on CUDA only"),
    ]


def on_device(device: str, function):
    """``function()`` timed to its end on ``device``, and the peak CUDA allocation (None on the CPU)."""
    import torch

    cuda = device == CUDA
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    result = function()
    if cuda:
        torch.cuda.synchronize()
    return result, (torch.cuda.max_memory_allocated() if cuda else None)


def agreement(data, *, split, seed, meter, check):
    """One check on the data set's device; its score (compared across devices by the goals)."""
    function = CHECKS[check][0]
    with meter:
        score, peak = on_device(data["device"], lambda: function(data["device"], seed))
    return {"score": score, "cuda_peak_bytes": peak}


def dsl_gowalla(data, *, split, seed, meter, backbone, density, n_epochs, batch_size, lr):
    """``DSLRecommender`` (d = 64, L2 1e-4) at the settings of the CPU benchmark, on CUDA."""
    import statistics

    from recsys import DSLRecommender

    model = DSLRecommender(backbone=backbone, density=density, n_epochs=n_epochs, batch_size=batch_size, lr=lr,
                           n_factors=64, reg=1e-4, random_state=seed, device=CUDA, verbose=0)
    with meter:
        _, peak = on_device(CUDA, lambda: model.fit(data["train"]))
    scores = model.evaluate(data["test"], k=(20,))
    return {"recall@20": scores["recall@20"], "ndcg@20": scores["ndcg@20"], "cuda_peak_bytes": peak,
            "epoch_seconds": statistics.median(entry["seconds"] for entry in model.history_)}


def mlc_digits(data, *, split, seed, meter):
    """``ManifoldClustering`` on digits (50 epochs), on CUDA."""
    from graphkit import ManifoldClustering
    from graphkit.metrics import clustering_scores

    model = ManifoldClustering(n_clusters=10, n_epochs=50, warmup_epochs=10, random_state=seed, device=CUDA,
                               verbose=0)
    with meter:
        _, peak = on_device(CUDA, lambda: model.fit(data["X"]))
    scores = clustering_scores(data["y"], model.labels_)
    return {"acc": scores["acc"], "nmi": scores["nmi"], "cuda_peak_bytes": peak}


# name: (check, tolerance on |cuda - cpu|, what the score is, in quick mode)
CHECKS = {
    "FunBaT": (checks.funbat, 0.01, "test RMSE", False),
    "KroneckerSBL (svd)": (partial(checks.kronecker_sbl, method="svd"), 0.5, "NMSE dB", True),
    "KroneckerSBL (am)": (partial(checks.kronecker_sbl, method="am"), 0.5, "NMSE dB", False),
    "FLoRA (conv + linear, merge checked)": (checks.flora, 0.05, "final MSE", False),
    "FastRP": (checks.fastrp, 1e-3, "sum of 5 rows", True),
    "PamC": (partial(checks.pamc, loss="pamc"), 0.05, "ACC", False),
    "PamC (all-pairs loss)": (partial(checks.pamc, loss="pairwise"), 0.05, "ACC", False),
    "ManifoldClustering": (checks.manifold_clustering, 0.05, "ACC", False),
    "DSLRecommender (MF)": (partial(checks.dsl, backbone="mf"), 0.02, "Recall@20", True),
    "DSLRecommender (LightGCN)": (partial(checks.dsl, backbone="lightgcn"), 0.02, "Recall@20", False),
    "CTRClassifier + compress": (checks.ctr, 0.01, "AUC", False),
}
# As the CPU benchmark dsl_gowalla runs them.
DSL_SETTINGS = {"mf": dict(n_epochs=10, batch_size=2048, lr=3e-3),
                "lightgcn": dict(n_epochs=20, batch_size=32768, lr=1e-2)}


def check_methods() -> list:
    methods = []
    for name, (_, tolerance, what, quick) in CHECKS.items():
        methods.append(Method(name, agreement, settings={"check": name},
                              datasets=(CPU, CUDA, QUICK) if quick else (CPU, CUDA),
                              description=f"score: {what}; CUDA must agree within {tolerance:g}"))
    return methods


def real_methods() -> list:
    methods = [Method(f"DSL {backbone}, density {density:g}", dsl_gowalla, datasets=(GOWALLA,),
                      settings={"backbone": backbone, "density": density, **settings},
                      description="the settings of the CPU benchmark dsl_gowalla, as given")
               for backbone, settings in DSL_SETTINGS.items() for density in (1.0, 0.5, 0.2)]
    return methods + [Method("ManifoldClustering, 50 epochs", mlc_digits, datasets=(DIGITS,))]


def gap(check: str):
    def value(results, seed):
        return abs(results.value("score", method=check, dataset=CUDA, seed=seed)
                   - results.value("score", method=check, dataset=CPU, seed=seed))
    return value


def goals() -> list:
    return [Goal(f"{name}: CUDA agrees with the CPU within {tolerance:g} ({what}, |CUDA - CPU|)", gap(name), "<=",
                 tolerance, tolerance=tolerance, fmt="{:.2g}")
            for name, (_, tolerance, what, _) in CHECKS.items()]


CUDA_PEAK = Column("cuda_peak_bytes", "CUDA peak MiB (max)", "{:.0f}", "max", 2**-20)

BENCHMARK = Benchmark(
    name="device_check",
    title="Device check: every estimator on the CPU and on CUDA",
    description="""
- Agreement: each estimator is fitted on small generated data on `"cpu"` and on `"cuda"`, with the seed as the random state of the data and of the model; the score is one figure of the fit (test RMSE, NMSE, final loss, the sum of 5 embedding rows, clustering accuracy, Recall@20, AUC). Floating-point reductions run in another order on a GPU, so iterative fits drift apart a little: a check's goal is |CUDA score − CPU score| within its tolerance on every seed (exact checks have tight tolerances). The FLoRA check also fails outright when merging the adapter changes the outputs by more than 1e-4.
- Time is the wall time of the whole check (data generation and fit), synchronised with the GPU; the CUDA peak is torch's peak allocation on the device.
- Real data on CUDA only (their CPU figures are in the other reports): DSL on Gowalla at the CPU benchmark's settings (MF 10 epochs, batch 2048, lr 3e-3; LightGCN 20 epochs, batch 32768, lr 1e-2; d = 64, L2 1e-4) at densities 1, 0.5 and 0.2, and ManifoldClustering on digits (50 epochs). Nothing is chosen here; the settings are as given.
- Without CUDA (CI, most development machines) the CUDA data sets are unavailable and the goals are not measured. Quick mode runs the CPU side of three checks only.
- The last run with a GPU (an H200, at commit `a3d0753`, by the script that preceded this harness) is kept as a record in `docs/device_check_h200.md`; its figures are not this report's.
""",
    datasets=datasets,
    methods=check_methods() + real_methods(),
    seeds=(0, 1, 2),
    quick_seeds=(0,),
    goals=goals(),
    tables=[
        Table("Agreement (generated data, same seed on each device)", rows=("method",), pivot="device",
              columns=[Column("score", "score", "{:.4g}"), Column("seconds", "s (median)", "{:.2f}", "median"),
                       CUDA_PEAK],
              datasets=[CPU, CUDA, QUICK], note="The score of each check is named in the goals above."),
        Table("DSL on Gowalla, on CUDA", datasets=[GOWALLA],
              columns=[Column("recall@20", "Recall@20"), Column("ndcg@20", "NDCG@20"),
                       Column("seconds", "fit s (median)", "{:.1f}", "median"),
                       Column("epoch_seconds", "ms / epoch (median)", "{:.1f}", "median", 1e3), CUDA_PEAK]),
        Table("ManifoldClustering on digits, on CUDA", datasets=[DIGITS],
              columns=[Column("acc", "ACC", "{:.3f}"), Column("nmi", "NMI", "{:.3f}"),
                       Column("seconds", "fit s (median)", "{:.1f}", "median"), CUDA_PEAK]),
    ],
    threads=1,
)
