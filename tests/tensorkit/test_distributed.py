"""tensorkit.distributed on two gloo processes: gradients summed (row-sparse rows included), failures
shared, values checked across ranks, and a world of one that changes nothing."""

import time

import pytest
import numpy as np
import torch

from tensorkit import distributed
from tests.multiprocess import run_ranks, values


def _reduce(rank):
    world = distributed.current_world()
    dense = torch.nn.Parameter(torch.zeros(3))
    table = torch.nn.Parameter(torch.zeros(5, 2))
    dense.grad = torch.full((3,), float(rank + 1))
    table.grad = torch.zeros(5, 2)
    rows = torch.tensor([rank, 3])
    table.grad[rows] = torch.tensor([[1.0, 2.0], [10.0 * (rank + 1), 1.0]])
    result = distributed.reduce_gradients(world, [dense, table], n_rows=rank + 2, row_sparse={table: rows},
                                          extras=(0.5,))
    return world.size, world.rank, dense.grad.tolist(), table.grad.tolist(), result.n_rows, result.extras


def test_gradients_are_summed_over_ranks_with_sparse_rows_exchanged_row_wise():
    outcomes = values(run_ranks(_reduce))
    expected_table = [[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [30.0, 2.0], [0.0, 0.0]]
    for rank, (size, r, dense, table, n_rows, extras) in enumerate(outcomes):
        assert (size, r) == (2, rank)
        assert dense == [3.0, 3.0, 3.0]
        assert table == expected_table
        assert n_rows == 5 and extras == (1.0,)


def _fail_in_stage(rank):
    world = distributed.current_world()
    with distributed.stage(world, "reading the data"):
        if rank == 1:
            raise ValueError("data.txt, line 7: label must be 0 or 1")
    return "not reached"


def test_a_failing_rank_stops_every_rank_with_its_error():
    outcomes = run_ranks(_fail_in_stage)
    assert isinstance(outcomes[1].error, ValueError)
    assert isinstance(outcomes[0].error, distributed.RankFailedError)
    assert outcomes[0].error.rank == 1
    assert "rank 1 failed while reading the data: ValueError: data.txt, line 7" in str(outcomes[0].error)


def _rank_dies(rank):
    world = distributed.current_world()
    if rank == 1:
        return "left without a word"     # never joins the collective below
    started = time.perf_counter()
    try:
        distributed.all_gather_objects(world, rank)
    except Exception as error:
        return ("raised", time.perf_counter() - started, type(error).__name__)
    return ("returned",)


def test_a_missing_rank_makes_the_others_raise_within_the_timeout():
    outcomes = values(run_ranks(_rank_dies, env={"TENSORKIT_DIST_TIMEOUT": "3"}))
    assert outcomes[0][0] == "raised"
    assert outcomes[0][1] < 30


def _check(rank, same):
    world = distributed.current_world()
    distributed.check_identical(world, {"vocabulary": ["a", "b"], "table": torch.arange(3.0)}, "the schema")
    distributed.check_identical(world, torch.zeros(2) if same else torch.full((2,), float(rank)), "the masks")
    return "agreed"


def test_identical_values_pass_and_differing_ones_raise_on_every_rank():
    assert values(run_ranks(_check, args=(True,))) == ["agreed", "agreed"]
    outcomes = run_ranks(_check, args=(False,))
    for outcome in outcomes:
        assert isinstance(outcome.error, RuntimeError)
        assert "the masks differs across ranks: ranks [1]" in str(outcome.error)


def _broadcast(rank):
    world = distributed.current_world()
    module = torch.nn.Linear(2, 2)
    with torch.no_grad():
        module.weight.fill_(float(rank + 7))
    distributed.broadcast_parameters(world, module)
    return module.weight.tolist()


def test_broadcast_gives_every_rank_rank_zeros_parameters():
    weights = values(run_ranks(_broadcast))
    assert weights[0] == weights[1] == [[7.0, 7.0], [7.0, 7.0]]


def test_a_world_of_one_changes_nothing():
    world = distributed.current_world()
    assert not world.active and world.is_main
    param = torch.nn.Parameter(torch.zeros(2))
    param.grad = torch.tensor([1.0, -1.0])
    result = distributed.reduce_gradients(world, [param], 3, row_sparse={param: torch.tensor([0])}, extras=(2.0,))
    assert result == distributed.StepResult(3.0, (2.0,), False)
    assert param.grad.tolist() == [1.0, -1.0]
    with pytest.raises(KeyError, match="x"):
        with distributed.stage(world, "anything"):
            raise KeyError("x")
    assert distributed.World(rank=1, size=3).share(10) == (4, 7)


def test_the_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TENSORKIT_DIST_TIMEOUT", "12.5")
    assert distributed.default_timeout().total_seconds() == 12.5
    monkeypatch.setenv("TENSORKIT_DIST_TIMEOUT", "-1")
    with pytest.raises(ValueError, match="TENSORKIT_DIST_TIMEOUT"):
        distributed.default_timeout()


def test_digest_tells_values_apart():
    assert distributed.digest(torch.zeros(2)) == distributed.digest(torch.zeros(2))
    assert distributed.digest(torch.zeros(2)) != distributed.digest(torch.zeros(2, dtype=torch.float64))
    assert distributed.digest({"a": 1, "b": [1, 2]}) == distributed.digest({"b": [1, 2], "a": 1})


def test_digest_of_object_arrays_depends_on_the_items_not_their_addresses():
    first = np.array(["".join(["node", str(i)]) for i in range(50)], dtype=object)
    second = np.array(["".join(["node", str(i)]) for i in range(50)], dtype=object)
    assert first[3] is not second[3]
    assert distributed.digest(first) == distributed.digest(second)
    second[7] = "other"
    assert distributed.digest(first) != distributed.digest(second)
