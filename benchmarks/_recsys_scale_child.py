"""The measuring children of the recommender scaling benchmark: ``python -m benchmarks._recsys_scale_child SPEC``,
or ``torchrun --standalone --nproc_per_node 2 -m benchmarks._recsys_scale_child SPEC`` for two processes.

SPEC is JSON with a ``kind`` ("ctr" or "dsl"); rank 0 prints the figures as one JSON line. A CTR fit
runs after a warm-up fit on 2,000 rows; its added peak is what the fit adds to the resident memory
(:class:`benchmarks.harness.Meter`: VmHWM reset before it).
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time

from benchmarks.harness import Meter

CTR = {"model": "deepfm", "embed_dim": 8, "hidden": [64, 64], "batch_size": 4096, "learning_rate": 1e-3,
       "validation_fraction": 0.05, "chunksize": 100_000, "shuffle_buffer": 200_000}
WARM_UP_ROWS = 2_000
WORLD_SIZES = (2, 4, 8)       # the design note's figures


def _vmhwm_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def _group():
    """Join torchrun's process group (gloo) when launched by it, for the block; yields the world.

    The library's :func:`tensorkit.distributed.launched_process_group`: every rank waits for the others
    before the group is destroyed (rank 1 used to exit while rank 0 evaluated, and gloo could abort a
    process whose peer left: "terminate called without an active exception").
    """
    from tensorkit import distributed

    with distributed.launched_process_group():
        yield distributed.current_world()


def _classifier(spec: dict, **overrides):
    from recsys import CTRClassifier

    params = {**CTR, **spec.get("ctr", {}), "max_epochs": spec["epochs"], "random_state": spec["seed"], "device": "cpu",
              "verbose": 0, **overrides}
    params["hidden"] = tuple(params["hidden"])
    buckets = params.pop("hash_buckets", None)
    if buckets:   # every categorical field hashed: no vocabulary is counted
        from recsys.ctr import CategoricalField, Schema
        from recsys.ctr.data import CRITEO_CATEGORICAL, CRITEO_DENSE

        params["schema"] = Schema(dense=CRITEO_DENSE,
                                  categorical=[CategoricalField(name, hash_buckets=buckets) for name in CRITEO_CATEGORICAL])
    return CTRClassifier(**params)


def _touched_rows(clf, frame, batch_size: int, seed: int) -> dict:
    """Mean embedding rows a rank's batch touches (summed over the fields), per world size."""
    import numpy as np

    codes = clf.encode(frame.drop(columns="label")).categorical
    rng = np.random.RandomState(seed)
    out = {}
    for size in (1,) + WORLD_SIZES:
        rows = -(-batch_size // size)
        draws = [sum(len(np.unique(codes[idx, f])) for f in range(codes.shape[1]))
                 for idx in (rng.choice(len(codes), min(rows, len(codes)), replace=False) for _ in range(5))]
        out[str(size)] = float(np.mean(draws))
    return out


def _parameter_counts(clf) -> dict:
    model = clf.model_
    table_ids = {id(p) for name, p in model.named_parameters() if name.startswith(("embeddings.", "first_order."))}
    tables = [[int(p.shape[0]), int(p[0].numel())] for name, p in model.named_parameters() if id(p) in table_ids]
    return {"dense": int(sum(p.numel() for p in model.parameters() if id(p) not in table_ids)), "tables": tables}


def run_ctr_child(spec: dict) -> None:
    """One CTR fit ("stream": from the file; "memory": read_criteo then fit); rank 0 prints the figures."""
    import torch

    from recsys.ctr.data import read_criteo
    from recsys.metrics import roc_auc

    torch.set_num_threads(spec["threads"])
    warm = read_criteo(spec["train"], nrows=WARM_UP_ROWS)
    _classifier(spec, max_epochs=1, validation_fraction=0.0).fit(warm.drop(columns="label"), warm["label"])
    with _group() as world:
        meter = Meter()
        with meter:
            if spec["mode"] == "stream":
                clf = _classifier(spec).fit(spec["train"])
            else:
                frame = read_criteo(spec["train"])
                clf = _classifier(spec).fit(frame.drop(columns="label"), frame["label"])
                del frame
        result = {"mode": spec["mode"], "world_size": world.size, "wall_seconds": meter.seconds,
                  "added_peak_bytes": meter.peak_bytes,
                  "process_peak_bytes": _vmhwm_bytes(),
                  "n_rows_seen": int(getattr(clf, "n_rows_seen_", 0)) or None,
                  "table_values": sum(rows * width for rows, width in _parameter_counts(clf)["tables"]),
                  "history": [{k: float(v) for k, v in h.items()} for h in clf.history_]}
        if world.is_main:
            test = read_criteo(spec["test"])
            result["test_auc"] = roc_auc(test["label"].to_numpy(), clf.decision_function(test.drop(columns="label")))
            if spec.get("design"):
                result["parameters"] = _parameter_counts(clf)
                result["batch_size"] = int(clf.batch_size)
                result["touched_rows"] = _touched_rows(clf, test, int(clf.batch_size), spec["seed"])
            print(json.dumps(result), flush=True)


def _load_interactions(spec: dict):
    from recsys.datasets import make_low_rank_interactions
    from recsys.interactions import read_lightgcn_split

    if spec["quick"]:
        data = make_low_rank_interactions(n_users=400, n_items=300, rank=8, interactions_per_user=20,
                                          random_state=spec["seed"])
        return data.split_by_user(test_size=0.2, random_state=spec["seed"])
    return read_lightgcn_split(spec["data_root"])


def run_dsl_child(spec: dict) -> None:
    """One DSLRecommender fit; rank 0 prints Recall@20, seconds per epoch and every rank's mask digest."""
    import numpy as np
    import torch

    from recsys import DSLRecommender
    from tensorkit import distributed

    torch.set_num_threads(spec["threads"])
    train, test = _load_interactions(spec)
    params = {**spec["dsl"], "n_epochs": spec["epochs"], "random_state": spec["seed"], "device": "cpu", "verbose": 0}
    DSLRecommender(**{**params, "n_epochs": 1, "batch_size": 64}).fit(
        np.stack([train.users[:256], train.items[:256]], axis=1))
    with _group() as world:
        model = DSLRecommender(**params)
        wall = time.perf_counter()
        model.fit(train)
        wall = time.perf_counter() - wall
        masks = distributed.digest((model.user_embeddings_ != 0, model.item_embeddings_ != 0,
                                    {k: dict(v) for k, v in model.density_report_.items()}))
        weights = distributed.digest((model.user_embeddings_, model.item_embeddings_))
        digests = distributed.all_gather_objects(world, (masks, weights))
        if world.is_main:
            scores = model.evaluate(test, k=(20,))
            print(json.dumps({"world_size": world.size, "recall@20": float(scores["recall@20"]),
                              "ndcg@20": float(scores["ndcg@20"]),
                              "epoch_seconds": statistics.median(h["seconds"] for h in model.history_),
                              "wall_seconds": wall, "mask_digests": [d[0] for d in digests],
                              "weight_digests": [d[1] for d in digests],
                              "n_active": int(model.n_active_parameters_)}), flush=True)


def main(argv=None) -> int:
    spec = json.loads((argv or sys.argv[1:])[0])
    (run_ctr_child if spec["kind"] == "ctr" else run_dsl_child)(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
