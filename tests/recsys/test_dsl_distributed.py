"""DSLRecommender data-parallel on two gloo processes: a step equals the single-process step on the whole
batch (growth gradients summed, carried gradients counted once), ranks end identical, failures reach
every rank."""

import numpy as np
import pytest
import scipy.sparse as sp

import recsys.dsl as dsl_module
from recsys._dsl_net import _DSLNet
from recsys._dsl_parallel import rank_shares
from recsys.datasets import make_low_rank_interactions
from recsys.dsl import DSLRecommender
from recsys.sparse.targets import TableTarget
from tensorkit.distributed import RankFailedError, World
from tests.multiprocess import run_ranks, values

# batch_size above the ~480 pairs of _small(): every epoch is one global batch, so every step and update must
# match the single-process one (with negatives fixed per user, _fixed_negatives, as the ranks draw their own)
ONE_BATCH = dict(n_factors=8, batch_size=1024, lr=0.05, reg=0.01, update_interval=1, device="cpu", verbose=0,
                 random_state=0)
# (backbone, settings): n_epochs=3 gives two prune/grow updates, the second from a carried gradient
STEP_CASES = [
    ("mf", dict(density=1.0, n_epochs=2)),
    ("mf", dict(density=0.5, n_epochs=3, grad_decay=1.0)),
    ("mf", dict(density=0.5, n_epochs=3, grad_decay=1.0, sparse_storage=False)),
    ("lightgcn", dict(density=0.5, n_epochs=3, n_layers=2)),
    ("lightgcn", dict(density=0.5, n_epochs=3, n_layers=2, sparse_storage=False)),
]
SEVERAL_BATCHES = dict(n_factors=16, n_epochs=6, batch_size=128, lr=5e-2, reg=0.1, density=0.5, device="cpu",
                       verbose=0, random_state=0)


def _small():
    return make_low_rank_interactions(n_users=60, n_items=50, rank=4, interactions_per_user=8, random_state=0)


def _split():
    data = make_low_rank_interactions(n_users=120, n_items=100, rank=5, interactions_per_user=12, random_state=0)
    return data.split_by_user(test_size=0.2, random_state=0)


def _fixed_negatives(users, train, rng):
    """A negative item that depends on the user only, so one process and two draw the same ones."""
    n_items = train.shape[1]
    out = np.empty(len(users), dtype=np.int64)
    for t, user in enumerate(users):
        seen = set(train.indices[train.indptr[user]:train.indptr[user + 1]].tolist())
        item = (7 * int(user) + 3) % n_items
        while item in seen:
            item = (item + 1) % n_items
        out[t] = item
    return out


def _outcome(rec):
    """What must agree: embeddings, the active sets, the losses, the updates."""
    model = rec.model_
    if model.storage == "table":
        active = [model.user.indices.numpy().copy(), model.item.indices.numpy().copy()]
    else:
        active = [(model.user.weight != 0).numpy().copy(), (model.item.weight != 0).numpy().copy()]
    return dict(users=rec.user_embeddings_, items=rec.item_embeddings_, active=active,
                loss=[r["loss"] for r in rec.history_], recall=[r.get("recall@20") for r in rec.history_],
                n_updates=rec.n_updates_)


def _step_fits():
    data = _small()
    return [_outcome(DSLRecommender(backbone, **ONE_BATCH, **settings).fit(data)) for backbone, settings in STEP_CASES]


def _rank_work(rank, train, test):
    """Everything the tests run on two ranks, in one start of the processes (they take seconds to start)."""
    several = _several_fits(train, test)
    failing = _failing_fits(rank)
    dsl_module.sample_negatives = _fixed_negatives
    return dict(step=_step_fits(), several=several, failing=failing)


@pytest.fixture(scope="module")
def two_ranks():
    return values(run_ranks(_rank_work, args=_split(), env={"TENSORKIT_DIST_TIMEOUT": "30"}))


def _assert_same_across_ranks(first, other):
    np.testing.assert_array_equal(first["users"], other["users"])
    np.testing.assert_array_equal(first["items"], other["items"])
    for a, b in zip(first["active"], other["active"]):
        np.testing.assert_array_equal(a, b)
    assert first["loss"] == other["loss"] and first["recall"] == other["recall"]
    assert first["n_updates"] == other["n_updates"]


def test_a_step_on_two_ranks_equals_the_single_process_step_on_the_whole_batch(two_ranks, monkeypatch):
    monkeypatch.setattr(dsl_module, "sample_negatives", _fixed_negatives)
    singles = _step_fits()
    rank0, rank1 = (outcome["step"] for outcome in two_ranks)
    for (backbone, settings), single, first, other in zip(STEP_CASES, singles, rank0, rank1):
        _assert_same_across_ranks(first, other)
        sparse = settings["density"] < 1
        assert first["n_updates"] == single["n_updates"] == (2 if sparse else 0), (backbone, settings)
        for a, b in zip(first["active"], single["active"]):   # the same prune/grow choices
            np.testing.assert_array_equal(a, b, err_msg=f"{backbone} {settings}")
        np.testing.assert_allclose(first["users"], single["users"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(first["items"], single["items"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(first["loss"], single["loss"], rtol=1e-5)


def _several_fits(train, test):
    return [_outcome(DSLRecommender(backbone, **SEVERAL_BATCHES).fit(train, eval_set=test))
            for backbone in ("mf", "lightgcn")]


def test_a_multi_epoch_sparse_fit_ends_identical_on_every_rank_and_recalls_like_one_process(two_ranks):
    train, test = _split()
    rank0, rank1 = (outcome["several"] for outcome in two_ranks)
    for backbone, first, other in zip(("mf", "lightgcn"), rank0, rank1):
        _assert_same_across_ranks(first, other)
        single = _outcome(DSLRecommender(backbone, **SEVERAL_BATCHES).fit(train, eval_set=test))
        assert first["n_updates"] == single["n_updates"] > 0
        assert first["loss"][-1] < first["loss"][0]
        np.testing.assert_allclose(first["loss"], single["loss"], atol=0.02)   # the same course of training
        assert abs(first["recall"][-1] - single["recall"][-1]) < 0.15 * single["recall"][-1], backbone


def _failing_fits(rank):
    """Three fits that fail on rank 1 (in the loss, in a prune/grow update, reading the data): what each rank
    raised."""
    data = _small()
    settings = dict(n_factors=8, n_epochs=3, batch_size=64, density=0.5, update_interval=2, device="cpu",
                    verbose=0, random_state=0)
    caught = []

    def attempt(fit):
        try:
            fit()
        except Exception as error:   # every rank must raise; the test reads what
            caught.append((type(error).__name__, getattr(error, "rank", None), str(error)))
        else:
            caught.append(None)

    original_loss = _DSLNet.loss
    calls = []

    def failing_loss(self, *args, **kwargs):
        calls.append(1)
        if rank == 1 and len(calls) == 3:
            raise RuntimeError("planted failure in the loss")
        return original_loss(self, *args, **kwargs)

    _DSLNet.loss = failing_loss
    attempt(lambda: DSLRecommender(**settings).fit(data))
    _DSLNet.loss = original_loss

    original_apply = TableTarget.apply

    def failing_apply(self, *args, **kwargs):
        if rank == 1:
            raise RuntimeError("planted failure in the update")
        return original_apply(self, *args, **kwargs)

    TableTarget.apply = failing_apply
    attempt(lambda: DSLRecommender(**settings).fit(data))
    TableTarget.apply = original_apply

    empty = sp.csr_matrix((60, 50), dtype=np.float32)
    attempt(lambda: DSLRecommender(**settings).fit(empty if rank == 1 else data))
    return caught


def test_a_failing_rank_makes_every_rank_raise_naming_it(two_ranks):
    rank0, rank1 = (outcome["failing"] for outcome in two_ranks)
    expected = [("RuntimeError", "planted failure in the loss", "training"),
                ("RuntimeError", "planted failure in the update", "prune/grow update"),
                ("ValueError", "no interactions", "training data")]
    for (own_type, message, what), at0, at1 in zip(expected, rank0, rank1):
        assert at1 is not None and at1[0] == own_type and message in at1[2]
        assert at0 is not None and at0[0] == RankFailedError.__name__ and at0[1] == 1
        assert message in at0[2] and what in at0[2]


@pytest.mark.parametrize("n_pairs, batch_size", [(10, 4), (7, 10), (5, 2)])
def test_rank_shares_cover_every_batch_once_in_order(n_pairs, batch_size):
    shares = [rank_shares(World(rank=r, size=3), n_pairs, batch_size) for r in range(3)]
    sizes = [[size for size, _ in batches] for _, batches in shares]
    assert sizes[0] == sizes[1] == sizes[2] == [min(batch_size, n_pairs - s) for s in range(0, n_pairs, batch_size)]
    taken = np.sort(np.concatenate([picks for picks, _ in shares]))
    np.testing.assert_array_equal(taken, np.arange(n_pairs))
    for picks, batches in shares:
        assert len(picks) == sum(count for _, count in batches)
