"""Dynamic sparse training engine: budgets, exact selections, optimizer state, memory-true tables."""

import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from recsys.sparse import (DynamicSparsity, SparseTable, degree_row_counts, exact_budget, largest_k, random_positions,
                           smallest_k, split_positions, update_count, update_ratio)


def _distinct(shape, seed):
    """Values whose magnitudes are all different (no ties), random order and signs."""
    rng = np.random.RandomState(seed)
    n = int(np.prod(shape))
    mags = (rng.permutation(n) + 1.0) / n
    return torch.tensor(mags * rng.choice([-1.0, 1.0], n), dtype=torch.float32).view(shape)


class _Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.lin = nn.Linear(6, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, idx):
        return self.out(torch.relu(self.lin(self.emb(idx)))).squeeze(-1)


# -- schedule and selection helpers ------------------------------------------------------------


def test_cosine_schedule_follows_formula():
    r0, rmin, end = 0.5, 0.005, 1000
    for t in [0, 1, 10, 250, 500, 999, 1000]:
        expected = rmin + (r0 - rmin) * (1 + math.cos(math.pi * t / end)) / 2
        assert update_ratio(t, r0, rmin, end, "cosine") == pytest.approx(expected, abs=1e-12)
    assert update_ratio(1001, r0, rmin, end) == 0.0
    assert update_ratio(400, r0, rmin, end, "linear") == pytest.approx(r0 + (rmin - r0) * 0.4)
    assert update_ratio(400, r0, rmin, None) == r0
    p = nn.Parameter(torch.randn(10, 10))
    ds = DynamicSparsity([p], update_ratio=r0, final_update_ratio=rmin, end_step=end, random_state=0)
    assert ds.update_ratio_at(300) == pytest.approx(rmin + (r0 - rmin) * (1 + math.cos(0.3 * math.pi)) / 2)
    assert update_count(0.3, 10, 100) == 3 and update_count(0.31, 10, 100) == 4
    assert update_count(0.5, 10, 2) == 2 and update_count(0.0, 10, 2) == 0


def test_smallest_k_is_exact_with_ties():
    scores = torch.tensor([1.0, 0.5, 0.5, 0.5, 0.5, 2.0, 0.1])
    picked = smallest_k(scores, 3)
    assert picked.numel() == 3 and len(set(picked.tolist())) == 3
    assert 6 in picked.tolist() and all(scores[i] <= 0.5 for i in picked.tolist())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1, 37, 300, 599, 600])
def test_smallest_k_matches_sorting_with_many_ties(dtype, k):
    """Magnitudes with a block of exact zeros (regrown weights not yet moved) and repeats: exactly k
    distinct positions, and the chosen are never larger than the rest (float32: the radix-select path)."""
    gen = torch.Generator().manual_seed(k)
    scores = torch.rand(600, generator=gen).mul(8).floor().div(8).to(dtype)
    scores[torch.randperm(600, generator=gen)[:150]] = 0.0
    picked = smallest_k(scores, k)
    assert picked.numel() == k and len(set(picked.tolist())) == k
    rest = torch.ones(600, dtype=torch.bool)
    rest[picked] = False
    kth = torch.sort(scores).values[k - 1]
    assert bool((scores[picked] <= kth).all()) and (k == 600 or bool((scores[rest] >= kth).all()))


@pytest.mark.parametrize("two_pass", [False, True])
@pytest.mark.parametrize("k", [3, 25, 110])
@pytest.mark.parametrize("chunk", [1, 7, 40, 1000])
def test_largest_k_streaming_matches_numpy(chunk, k, two_pass):
    rng = np.random.RandomState(chunk)
    scores = rng.rand(200)
    scores[rng.rand(200) < 0.4] = -np.inf
    payload = torch.arange(200, dtype=torch.float32)
    chunks = [(lo, torch.tensor(scores[lo:lo + chunk]), payload[lo:lo + chunk]) for lo in range(0, 200, chunk)]
    source = (lambda: iter(chunks)) if two_pass else iter(chunks)
    pos, val = largest_k(source, k)
    expected = np.argsort(-scores)[:k]
    assert sorted(pos.tolist()) == sorted(expected.tolist())
    assert torch.equal(val, pos.float())
    with pytest.raises(ValueError, match="candidates"):
        largest_k((lambda: iter(chunks)) if two_pass else iter(chunks), int(np.isfinite(scores).sum()) + 1)


def test_two_pass_largest_k_takes_exactly_k_among_ties():
    scores = torch.tensor([0.5, 0.9, 0.5, -np.inf, 0.5, 0.1, 0.5, 0.9])
    chunks = [(lo, scores[lo:lo + 3], None) for lo in range(0, 8, 3)]
    pos, payload = largest_k(lambda: iter(chunks), 4)
    assert payload is None and pos.numel() == 4 and len(set(pos.tolist())) == 4
    assert {1, 7} <= set(pos.tolist()) and all(scores[i] == 0.5 for i in set(pos.tolist()) - {1, 7})


@pytest.mark.parametrize("kind", ["magnitudes", "many zeros", "signed", "negative zero"])
@pytest.mark.parametrize("k", [1, 37, 300, 599])
def test_replayable_largest_k_matches_sorting_for_float32_scores(kind, k):
    """Non-negative float32 scores take the histogram route over the chunks, others are gathered whole;
    both give exactly k positions whose scores are the k largest (ties at the threshold included)."""
    rng = np.random.RandomState(k)
    scores = np.abs(rng.randn(900)).astype(np.float32)
    if kind == "many zeros":
        scores[rng.rand(900) < 0.5] = 0.0           # one bucket holds half of the candidates
        scores[:50] = scores[50]                     # and a tie run elsewhere
    elif kind == "signed":
        scores = rng.randn(900).astype(np.float32)
    elif kind == "negative zero":
        scores[::7] = -0.0
    scores[rng.rand(900) < 0.3] = -np.inf
    tensor = torch.from_numpy(scores)
    chunks = [(lo, tensor[lo:lo + 64], None) for lo in range(0, 900, 64)]
    pos, _ = largest_k(lambda: iter(chunks), k)
    assert pos.numel() == k == len(set(pos.tolist()))
    chosen = np.sort(scores[pos.numpy()])[::-1]
    assert np.array_equal(chosen, np.sort(scores)[::-1][:k])


def test_replayable_random_chunks_give_every_pass_the_same_scores():
    from recsys.sparse import replayable

    gen = torch.Generator().manual_seed(3)
    draws = []

    def chunks():
        values = torch.rand(50, generator=gen)
        draws.append(values)
        return iter([(0, values, None)])

    pos, _ = largest_k(replayable(chunks, gen), 10)
    assert len(draws) == 3 and all(torch.equal(draws[0], d) for d in draws[1:])
    assert sorted(pos.tolist()) == sorted(torch.topk(draws[0], 10).indices.tolist())


def test_split_positions_and_random_positions():
    parts = split_positions(torch.tensor([0, 4, 5, 11, 12]), [5, 7, 3])
    assert [p.tolist() for p in parts] == [[0, 4], [0, 6], [0]]
    gen = torch.Generator().manual_seed(0)
    for numel, count in [(1000, 10), (1000, 500), (50, 50)]:
        pos = random_positions(numel, count, gen)
        assert pos.numel() == count and torch.unique(pos).numel() == count
        assert bool((pos[1:] > pos[:-1]).all()) and int(pos.min()) >= 0 and int(pos.max()) < numel


# -- masked mode -------------------------------------------------------------------------------


def test_initial_masks_have_exact_budget():
    torch.manual_seed(0)
    model = _Small()
    ds = DynamicSparsity(model, density=0.3, random_state=0)
    assert set(ds.masks) == {"emb.weight", "lin.weight", "out.weight"}  # biases stay dense
    for name, p in model.named_parameters():
        if name in ds.masks:
            assert int(ds.masks[name].sum()) == exact_budget(0.3, p.numel()) == round(0.3 * p.numel())
            assert bool((p[~ds.masks[name]] == 0).all())
    report = ds.density_report()
    assert report["total"]["active"] == sum(int(m.sum()) for m in ds.masks.values())


def test_masked_prune_and_grow_match_numpy_reference():
    p = nn.Parameter(_distinct((6, 5), 0))
    ds = DynamicSparsity([("w", p)], density=0.5, update_interval=1, update_ratio=0.3, random_state=0)
    mask_before = ds.masks["w"].clone().numpy().ravel()
    w_before = p.detach().clone().numpy().ravel()
    grad = _distinct((6, 5), 1)
    p.grad = grad.clone()
    assert ds.step()
    active = np.flatnonzero(mask_before)
    inactive = np.flatnonzero(~mask_before)
    k = math.ceil(0.3 * active.size)
    pruned_ref = set(active[np.argsort(np.abs(w_before[active]))[:k]].tolist())
    grown_ref = set(inactive[np.argsort(-np.abs(grad.numpy().ravel()[inactive]))[:k]].tolist())
    mask_after = ds.masks["w"].numpy().ravel()
    assert set(np.flatnonzero(mask_before & ~mask_after).tolist()) == pruned_ref
    assert set(np.flatnonzero(~mask_before & mask_after).tolist()) == grown_ref
    assert mask_after.sum() == mask_before.sum() == 15
    assert np.all(p.detach().numpy().ravel()[list(grown_ref)] == 0)     # regrown start at zero
    assert np.all(p.detach().numpy().ravel()[~mask_after] == 0)


@pytest.mark.parametrize("make_opt", [lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
                                      lambda ps: torch.optim.Adam(ps, lr=1e-2)], ids=["sgd", "adam"])
def test_masked_mode_invariants_around_optimizers(make_opt):
    torch.manual_seed(0)
    model = _Small()
    opt = make_opt(model.parameters())
    ds = DynamicSparsity(model, density=0.4, update_interval=3, update_ratio=0.5, end_step=30, random_state=1)
    ds.attach_optimizer(opt)
    budgets = {n: int(m.sum()) for n, m in ds.masks.items()}
    params = dict(model.named_parameters())
    x = torch.randint(0, 20, (64,))
    y = torch.randn(64)
    n_changed = 0
    for _ in range(30):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        before = {n: m.clone() for n, m in ds.masks.items()}
        state_before = {n: {k: v.clone() for k, v in opt.state[params[n]].items() if torch.is_tensor(v)}
                        for n in ds.masks}
        changed = ds.step()
        for name, mask in ds.masks.items():
            p = params[name]
            assert int(mask.sum()) == budgets[name]
            assert bool((p[~mask] == 0).all())
            state = opt.state[p]
            for key, value in state.items():
                if not torch.is_tensor(value) or value.shape != p.shape:
                    continue
                assert bool((value[~mask] == 0).all()), key          # inactive: no optimizer state
                moved = mask ^ before[name]
                if changed:
                    assert bool((value[moved] == 0).all()), key      # pruned and regrown: reset
                    assert bool((mask & ~before[name]).sum() > 0) or not moved.any()
                survivors = mask & before[name]
                assert torch.equal(value[survivors], state_before[name][key][survivors]), key
        n_changed += int(changed)
    assert n_changed == 10 and len(ds.updates) == 10
    assert any(u["changed"] > 0 for u in ds.updates)


def test_regrown_positions_were_inactive_and_fix_freezes():
    torch.manual_seed(0)
    for fix in (False, True):
        model = _Small()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        ds = DynamicSparsity(model, density=0.5, update_interval=2, end_step=20, fix=fix, random_state=0,
                             optimizer=opt)
        initial = {n: m.clone() for n, m in ds.masks.items()}
        x = torch.randint(0, 20, (32,))
        moved = 0
        for _ in range(20):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            before = {n: m.clone() for n, m in ds.masks.items()}
            ds.step()
            for name, mask in ds.masks.items():
                grown = mask & ~before[name]
                assert not bool((grown & before[name]).any())
                moved += int(grown.sum())
        if fix:
            assert moved == 0 and all(torch.equal(initial[n], m) for n, m in ds.masks.items())
            assert ds.updates == []
        else:
            assert moved > 0


def test_global_redistribution_moves_budget_between_tensors():
    big = nn.Parameter(torch.full((10, 10), 5.0) + _distinct((10, 10), 0))
    small = nn.Parameter(0.01 * _distinct((10, 10), 1))
    ds = DynamicSparsity([("big", big), ("small", small)], density=0.5, update_interval=1, update_ratio=0.3,
                         redistribution="global", random_state=0)
    big.grad = 10 + _distinct((10, 10), 2)       # big's gradients dominate
    small.grad = 1e-3 * _distinct((10, 10), 3)
    ds.step()
    report = ds.density_report()
    assert report["total"]["active"] == 100
    assert report["big"]["active"] == 50 + 30 and report["small"]["active"] == 50 - 30  # k = ceil(0.3 * 100)
    for name, p in (("big", big), ("small", small)):
        assert bool((p[~ds.masks[name]] == 0).all())
    # without redistribution each keeps its own budget
    ds2 = DynamicSparsity([("big", big), ("small", small)], density=0.5, update_interval=1, update_ratio=0.3,
                          random_state=0)
    big.grad, small.grad = 10 + _distinct((10, 10), 2), 1e-3 * _distinct((10, 10), 3)
    ds2.step()
    assert ds2.density_report()["big"]["active"] == 50 == ds2.density_report()["small"]["active"]


def test_regrow_init_options_and_random_growth():
    for init in ("random", "gradient"):
        p = nn.Parameter(_distinct((8, 8), 0))
        ds = DynamicSparsity([("w", p)], density=0.5, update_interval=1, update_ratio=0.25, random_state=0,
                             regrow_init=init)
        before = ds.masks["w"].clone()
        values = p.detach().clone()
        p.grad = _distinct((8, 8), 5)
        ds.step()
        grown = ds.masks["w"] & ~before
        assert int(grown.sum()) == 8 and bool((p[grown] != 0).all())
        if init == "gradient":   # along -g, at the root mean square of the pruned weights
            pruned = before & ~ds.masks["w"]
            g = p.grad[grown]
            expected = -g * (values[pruned].pow(2).mean().sqrt() / g.pow(2).mean().sqrt())
            assert torch.allclose(p.detach()[grown], expected, rtol=1e-5, atol=0)
    p = nn.Parameter(_distinct((8, 8), 0))
    ds = DynamicSparsity([("w", p)], density=0.5, update_interval=1, grow="random", random_state=0)
    before = ds.masks["w"].clone()
    assert ds.step()                                  # no gradient needed
    assert int(ds.masks["w"].sum()) == 32 and int((ds.masks["w"] & ~before).sum()) == 16


def test_state_dict_round_trip_and_errors():
    torch.manual_seed(0)
    model = _Small()
    ds = DynamicSparsity(model, density=0.5, random_state=0)
    state = ds.state_dict()
    other = DynamicSparsity(model, density=0.5, random_state=1)
    other.load_state_dict(state)
    assert all(torch.equal(other.masks[n], m) for n, m in ds.masks.items())
    for bad in (0, 0.0, 1.5, -0.2, float("nan"), "half"):
        with pytest.raises(ValueError, match="density"):
            DynamicSparsity(model, density=bad)
    with pytest.raises(ValueError, match="update_interval"):
        DynamicSparsity(model, update_interval=0)
    with pytest.raises(ValueError, match="grow"):
        DynamicSparsity(model, grow="magnitude")
    with pytest.raises(ValueError, match="redistribution"):
        DynamicSparsity(model, redistribution="local")
    with pytest.raises(ValueError, match="no parameter"):
        DynamicSparsity([], density=0.5)
    p = nn.Parameter(torch.randn(4, 4))
    ds = DynamicSparsity([p], update_interval=1, random_state=0)
    with pytest.raises(RuntimeError, match="gradient"):
        ds.step()


# -- memory-true tables --------------------------------------------------------------------------


def _pair_loss(eu, ei):
    """The test loss of a batch's user and item rows (cubic in the users, so gradients differ in size)."""
    return ((eu * ei).sum(1) - 1).pow(2).mean() + 0.1 * eu.pow(3).sum()


class _Tables(nn.Module):
    def __init__(self, density=0.4, seed=0):
        super().__init__()
        self.user = SparseTable(9, 4, density, random_state=seed)
        self.item = SparseTable(7, 4, density, random_state=seed + 1)

    def loss(self, u, i):
        return _pair_loss(self.user(u), self.item(i))


def _check_table(table, budget):
    idx = table.indices.long()
    assert idx.numel() == budget == table.values.numel()
    assert torch.unique(idx).numel() == budget and bool((idx[1:] > idx[:-1]).all())
    assert int(idx.min()) >= 0 and int(idx.max()) < table.numel
    dense = table.to_dense().detach().reshape(-1)
    off = torch.ones(table.numel, dtype=torch.bool)
    off[idx] = False
    assert bool((dense[off] == 0).all())
    assert torch.equal(dense[idx], table.values.detach())
    rows = torch.div(idx, table.dim, rounding_mode="floor")
    assert torch.equal(table.indptr, torch.cat([torch.zeros(1, dtype=torch.long),
                                                torch.cumsum(torch.bincount(rows, minlength=table.n_rows), 0)]))


def test_table_gather_matches_dense_and_gradient_flows():
    table = SparseTable(11, 5, density=0.3, random_state=0)
    assert table.budget == round(0.3 * 55) and table.indices.dtype == torch.int32
    _check_table(table, round(0.3 * 55))
    rows = torch.tensor([3, 0, 10, 3, 7])
    assert torch.equal(table(rows), table.to_dense()[rows])
    table(rows).sum().backward()
    dense = table.to_dense().detach().requires_grad_(True)
    dense[rows].sum().backward()
    assert torch.allclose(table.values.grad, dense.grad.reshape(-1)[table.indices.long()])


def test_table_prune_and_grow_method():
    table = SparseTable(12, 3, density=0.5, random_state=0)
    opt = torch.optim.Adam(table.parameters(), lr=0.1)
    table.record_gradients(True)
    rows = torch.arange(12)
    (table(rows) * torch.linspace(-1, 1, 36).view(12, 3)).sum().backward()
    opt.step()
    old = set(table.indices.tolist())
    smallest = set(table.indices[torch.argsort(table.values.detach().abs())[:4]].tolist())
    pruned, grown = table.prune_and_grow(4, optimizer=opt)
    assert set(pruned.tolist()) == smallest and not (set(grown.tolist()) & old)
    assert set(table.indices.tolist()) == (old - smallest) | set(grown.tolist())
    _check_table(table, 18)
    assert opt.state[table.values]["exp_avg"].numel() == 18


@pytest.mark.parametrize("chunk", [1, 2, 4, 100])
def test_table_chunked_dense_gradient_equals_dense_reference(chunk):
    model = _Tables()
    u = torch.tensor([0, 3, 3, 8, 5, 0])
    i = torch.tensor([6, 1, 2, 2, 0, 4])
    for t in (model.user, model.item):
        t.record_gradients(True)
    model.loss(u, i).backward()
    du = model.user.to_dense().detach().requires_grad_(True)
    di = model.item.to_dense().detach().requires_grad_(True)
    _pair_loss(du[u], di[i]).backward()
    for table, ref in ((model.user, du.grad), (model.item, di.grad)):
        got = torch.cat([block for _, block in table.dense_gradient_chunks(chunk)])
        assert torch.allclose(got, ref * ~table.active_mask(), atol=1e-6)  # zero where growth does not read


def test_table_prune_grow_reference_and_adam_state_remap():
    model = _Tables(density=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ds = DynamicSparsity(model, update_interval=3, update_ratio=0.4, end_step=9, optimizer=opt, random_state=0)
    assert {t.name for t in ds.targets} == {"user", "item"} and ds.masks == {}
    budgets = {"user": model.user.budget, "item": model.item.budget}
    gen = torch.Generator().manual_seed(0)
    updates = 0
    for step in range(1, 10):
        u = torch.cat([torch.arange(9), torch.randint(0, 9, (3,), generator=gen)])   # every row: no zero
        i = torch.cat([torch.arange(7), torch.randint(0, 7, (5,), generator=gen)])   # gradient ties
        opt.zero_grad()
        model.loss(u, i).backward()
        # dense reference gradient of this batch (the tables only record before an update step)
        du = model.user.to_dense().detach().requires_grad_(True)
        di = model.item.to_dense().detach().requires_grad_(True)
        _pair_loss(du[u], di[i]).backward()
        opt.step()
        snap = {}
        for name, table, grad in (("user", model.user, du.grad), ("item", model.item, di.grad)):
            snap[name] = dict(flat=table.indices.long().clone(), values=table.values.detach().clone(),
                              m=opt.state[table.values]["exp_avg"].clone(),
                              v=opt.state[table.values]["exp_avg_sq"].clone(), grad=grad.reshape(-1))
        changed = ds.step()
        updates += int(changed)
        for name, table in (("user", model.user), ("item", model.item)):
            _check_table(table, budgets[name])
            old, new = snap[name], table.indices.long()
            state = opt.state[table.values]
            if not changed:
                assert torch.equal(old["flat"], new)
                continue
            k = update_count(ds.update_ratio_at(step), budgets[name], table.numel - budgets[name])
            pruned_ref = set(old["flat"][np.argsort(old["values"].abs().numpy(), kind="stable")[:k]].tolist())
            inactive = np.setdiff1d(np.arange(table.numel), old["flat"].numpy())
            grown_ref = set(inactive[np.argsort(-old["grad"].abs().numpy()[inactive], kind="stable")[:k]].tolist())
            old_set, new_set = set(old["flat"].tolist()), set(new.tolist())
            assert old_set - new_set == pruned_ref
            assert new_set - old_set == grown_ref                    # regrown were inactive before
            new_list = new.tolist()
            for slot, pos in enumerate(old["flat"].tolist()):
                if pos in new_set:                                   # survivors carry value and moments
                    j = new_list.index(pos)
                    assert table.values[j] == old["values"][slot]
                    assert state["exp_avg"][j] == old["m"][slot] and state["exp_avg_sq"][j] == old["v"][slot]
            for pos in grown_ref:                                    # regrown: zero weight, reset moments
                j = new_list.index(pos)
                assert table.values[j] == 0 and state["exp_avg"][j] == 0 and state["exp_avg_sq"][j] == 0
    assert updates == 3


def test_table_global_redistribution_and_persistence():
    model = _Tables(density=0.5)
    with torch.no_grad():
        model.user.values.mul_(100)                   # user weights large, item weights small
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ds = DynamicSparsity(model, update_interval=1, update_ratio=0.3, redistribution="global", optimizer=opt,
                         random_state=0)
    total = model.user.budget + model.item.budget
    user_before = model.user.budget
    u = torch.arange(9)
    i = torch.arange(9) % 7
    opt.zero_grad()
    (model.user(u).sum() * 10 + model.item(i).sum() * 1e-6).backward()   # user gradients dominate
    opt.step()
    ds.step()
    assert model.user.budget + model.item.budget == total
    assert model.user.budget > user_before
    _check_table(model.user, model.user.budget)
    _check_table(model.item, model.item.budget)
    assert opt.state[model.user.values]["exp_avg"].numel() == model.user.budget
    opt.zero_grad()
    model.loss(u, i).backward()
    opt.step()                                        # the optimizer still works on resized values
    # state_dict into a fresh model of a different split, and pickling
    fresh = _Tables(density=0.5, seed=3)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.user.to_dense(), model.user.to_dense())
    clone = pickle.loads(pickle.dumps(model))
    assert torch.equal(clone.item.to_dense(), model.item.to_dense())


def _user_item_tables(mode):
    """A user and an item table (memory-true SparseTables, or embeddings that DynamicSparsity masks), the
    tables by name and the loss of a batch of (user, item) pairs."""
    torch.manual_seed(0)
    if mode == "table":
        model = _Tables(density=0.5)
        return model, {"user": model.user, "item": model.item}, model.loss
    model = nn.ModuleDict({"user": nn.Embedding(9, 4), "item": nn.Embedding(7, 4)})

    def loss_of(u, i):
        return _pair_loss(model["user"](u), model["item"](i))
    return model, {"user": model["user"], "item": model["item"]}, loss_of


def _dense_gradients(tables, mode, u, i):
    """The batch's gradient of the same loss with respect to dense copies of the tables, flat, by name."""
    dense = {name: (t.to_dense() if mode == "table" else t.weight).detach().clone().requires_grad_(True)
             for name, t in tables.items()}
    _pair_loss(dense["user"][u], dense["item"][i]).backward()
    return {name: d.grad.reshape(-1) for name, d in dense.items()}


def _batch_step(opt, loss_of, tables, mode, gen, n_pairs):
    """One optimizer step on ``n_pairs`` random (user, item) pairs; returns the batch's dense gradients by name."""
    u, i = torch.randint(0, 9, (n_pairs,), generator=gen), torch.randint(0, 7, (n_pairs,), generator=gen)
    opt.zero_grad()
    loss_of(u, i).backward()
    grads = _dense_gradients(tables, mode, u, i)
    opt.step()
    return grads


@pytest.mark.parametrize("mode", ["table", "masked"])
def test_grad_window_grows_by_the_gradient_summed_over_the_window(mode):
    """With grad_window=w, growth ranks inactive entries by |sum of the last w batches' gradients|; batches
    before the window (and before the previous update) do not count."""
    model, tables, loss_of = _user_item_tables(mode)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)           # weights stay put: gradients are comparable
    ds = DynamicSparsity(model, density=0.5, update_interval=4, update_ratio=0.3, end_step=8, optimizer=opt,
                         random_state=0, grad_window=3)
    gen = torch.Generator().manual_seed(1)
    window = {name: torch.zeros(t.n_rows * t.dim if mode == "table" else t.weight.numel())
              for name, t in tables.items()}
    for step in range(1, 9):
        grads = _batch_step(opt, loss_of, tables, mode, gen, 3)    # few rows per batch: sparse gradients
        if step % 4 in (2, 3, 0):                                 # the 3 steps before each update
            for name in window:
                window[name] += grads[name]
        before = {name: _active_set(ds, name, t, mode) for name, t in tables.items()}
        k = {name: update_count(ds.update_ratio_at(step), len(before[name]), window[name].numel() - len(before[name]))
             for name in tables}
        changed = ds.step()
        assert changed == (step % 4 == 0)
        if not changed:
            continue
        for name, table in tables.items():
            after = _active_set(ds, name, table, mode)
            inactive = np.setdiff1d(np.arange(window[name].numel()), sorted(before[name]))
            scores = window[name].abs().numpy()[inactive]
            order = np.argsort(-scores, kind="stable")
            grown = after - before[name]
            assert len(grown) == k[name]
            # exactly the k largest summed-gradient entries (ties at the threshold aside)
            threshold = scores[order[k[name] - 1]]
            assert all(window[name].abs()[p] >= threshold - 1e-7 for p in grown)
            assert sum(window[name].abs()[p] > threshold + 1e-7 for p in grown) == int((scores > threshold + 1e-7).sum())
        window = {name: torch.zeros_like(w) for name, w in window.items()}
    with pytest.raises(ValueError, match="grad_window"):
        DynamicSparsity(_Tables(), update_interval=4, grad_window=5)


@pytest.mark.parametrize("mode", ["table", "masked"])
@pytest.mark.parametrize("decay", [0.5, 1.0])
def test_grad_decay_carries_the_gradient_of_entries_inactive_since_earlier_windows(mode, decay):
    """With grad_decay=d, an inactive entry's growth score is the current window's summed gradient plus d times
    its score at the previous update; entries pruned there start again from zero. Checked through the grown
    set (the k largest scores) and their Adam moments (the score over the decayed count of window steps)."""
    model, tables, loss_of = _user_item_tables(mode)
    opt = torch.optim.Adam(model.parameters(), lr=0.0)          # weights stay put: gradients are comparable
    ds = DynamicSparsity(model, density=0.5, update_interval=4, update_ratio=0.3, end_step=12, optimizer=opt,
                         random_state=0, grad_window=3, grad_decay=decay, regrow_moments="gradient")
    gen = torch.Generator().manual_seed(1)
    numel = {name: t.n_rows * t.dim if mode == "table" else t.weight.numel() for name, t in tables.items()}
    score = {name: torch.zeros(n) for name, n in numel.items()}
    steps, n_updates = 0.0, 0
    for step in range(1, 13):
        grads = _batch_step(opt, loss_of, tables, mode, gen, 3)
        if step % 4 in (2, 3, 0):                                 # the 3 steps before each update
            for name in score:
                score[name] += grads[name]
        before = {name: _active_set(ds, name, t, mode) for name, t in tables.items()}
        if not ds.step():
            continue
        n_updates += 1
        steps = 3 + decay * steps
        for name, table in tables.items():
            after = _active_set(ds, name, table, mode)
            grown, pruned = after - before[name], before[name] - after
            inactive = np.setdiff1d(np.arange(numel[name]), sorted(before[name]))
            scores = score[name].abs().numpy()[inactive]
            threshold = np.sort(scores)[::-1][len(grown) - 1]
            assert grown and all(score[name].abs()[p] >= threshold - 1e-6 for p in grown)
            assert sum(score[name].abs()[p] > threshold + 1e-6 for p in grown) == int((scores > threshold + 1e-6).sum())
            exp_avg = _state_at(opt, _param(table, mode), "exp_avg", mode, table)
            for pos in grown:
                assert torch.isclose(exp_avg[pos], score[name][pos] / steps, rtol=1e-4, atol=1e-10), (name, pos)
            carried = score[name] * decay
            carried[sorted(after | pruned)] = 0                  # grown entries leave, pruned ones join at zero
            score[name] = carried
    assert n_updates == 3
    ds.remove_hooks()                                             # training over: nothing is carried any more
    if mode == "table":
        assert all(t._carried is None and t._inactive_grad is None for t in tables.values())
    else:
        assert all(t.carried is None and t.dense_grad is None for t in ds.targets)
    for bad in (-0.1, 1.5, "high", True):
        with pytest.raises(ValueError, match="grad_decay"):
            DynamicSparsity(_Tables(), grad_decay=bad)


def _active_set(ds, name, table, mode):
    if mode == "table":
        return set(table.indices.long().tolist())
    return set(torch.nonzero(ds.masks[f"{name}.weight"].reshape(-1)).squeeze(1).tolist())


@pytest.mark.parametrize("mode", ["table", "masked"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_regrow_moments_start_from_the_window_mean_gradient(mode, optimizer):
    """regrow_moments="gradient": a regrown weight's Adam moments are g and g**2 (SGD's momentum g), with g
    its gradient summed over the growth window divided by the window's length; survivors keep their state."""
    model, tables, loss_of = _user_item_tables(mode)
    # lr 0: the weights stay put, so the dense reference gradients below are the ones the engine saw
    opt = (torch.optim.Adam(model.parameters(), lr=0.0) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9))
    keys = {"exp_avg": 1, "exp_avg_sq": 2} if optimizer == "adam" else {"momentum_buffer": 1}
    ds = DynamicSparsity(model, density=0.5, update_interval=4, update_ratio=0.3, end_step=4, optimizer=opt,
                         random_state=0, grad_window=3, regrow_moments="gradient")
    window = {name: 0.0 for name in tables}
    gen = torch.Generator().manual_seed(1)
    for step in range(1, 5):
        grads = _batch_step(opt, loss_of, tables, mode, gen, 6)
        if step >= 2:
            for name in window:
                window[name] = window[name] + grads[name]
        before = {name: _active_set(ds, name, t, mode) for name, t in tables.items()}
        old_state = {name: {key: _state_at(opt, _param(t, mode), key, mode, t) for key in keys}
                     for name, t in tables.items()}
        changed = ds.step()
    assert changed
    for name, table in tables.items():
        after = _active_set(ds, name, table, mode)
        grown, kept = after - before[name], after & before[name]
        assert grown
        for key, power in keys.items():
            state = _state_at(opt, _param(table, mode), key, mode, table)
            for pos in grown:
                expected = (window[name][pos] / 3) ** power
                assert torch.isclose(state[pos], expected, rtol=1e-5, atol=1e-12), (name, key, pos)
            for pos in kept:
                assert state[pos] == old_state[name][key][pos]
    with pytest.raises(ValueError, match="regrow_moments"):
        DynamicSparsity(_Tables(), regrow_moments="mean")


def _param(table, mode):
    """The parameter the optimizer updates for ``table`` (a table's current ``values`` or the weight)."""
    return table.values if mode == "table" else table.weight


def _state_at(opt, param, key, mode, table):
    """Optimizer state ``key`` of ``param`` by flat position in the table (a dict for tables)."""
    value = opt.state[param][key].detach().reshape(-1).clone()
    if mode == "table":
        return dict(zip(table.indices.long().tolist(), value))
    return value


def test_recorded_gradients_are_compacted_and_still_sum_exactly():
    """A long window keeps one vector over the inactive entries (plus at most a quarter of it in row blocks),
    with the same summed gradient there."""
    table = SparseTable(3000, 4, density=0.5, random_state=0)
    table.record_gradients(True)
    gen = torch.Generator().manual_seed(0)
    reference = torch.zeros(3000, 4)
    for _ in range(12):
        rows = torch.randint(0, 3000, (400,), generator=gen)
        weights = torch.randn(400, 4, generator=gen)
        (table(rows) * weights).sum().backward()
        dense = table.to_dense().detach().requires_grad_(True)
        (dense[rows] * weights).sum().backward()
        reference += dense.grad
        table.to_dense().sum().backward()      # a whole-table block too (LightGCN's path): gradient 1 everywhere
        reference += 1.0
    assert table._inactive_grad.shape == (3000 * 4 - table.budget + 1,)   # the inactive entries and a sink
    assert all(rows is not None for rows, _ in table._records)
    kept_rows = sum(int(rows.numel()) for rows, _ in table._records)
    assert kept_rows * 4 <= max(table._inactive_grad.numel() / 4, 1024 * 4)
    got = torch.cat([block for _, block in table.dense_gradient_chunks(chunk_rows=700)])
    assert torch.allclose(got, reference * ~table.active_mask(), atol=1e-5)


def test_recorded_row_blocks_alone_sum_exactly_before_and_after_compaction():
    """Row blocks with repeated rows land on the right inactive entries, kept as blocks (a short window) and
    once summed into the inactive vector (a long one)."""
    table = SparseTable(50, 6, density=0.3, random_state=1)
    gen = torch.Generator().manual_seed(1)
    for n_blocks in (1, 40):
        table.record_gradients(True)
        reference = torch.zeros(50, 6)
        for _ in range(n_blocks):
            rows = torch.randint(0, 50, (30,), generator=gen)
            weights = torch.randn(30, 6, generator=gen)
            (table(rows) * weights).sum().backward()
            reference.index_add_(0, rows, weights)
        assert (table._inactive_grad is None) == (n_blocks == 1)
        got = torch.cat([block for _, block in table.dense_gradient_chunks(chunk_rows=7)])
        assert torch.allclose(got, reference * ~table.active_mask(), atol=1e-5)


RAGGED_COUNTS = [4, 1, 7, 0, 8, 4, 2, 6, 3, 5, 4, 4]   # an empty row, a full one, and every count between


@pytest.mark.parametrize("row_counts", [None, RAGGED_COUNTS])
def test_row_balanced_tables_prune_and_grow_within_rows(row_counts):
    """balance='row': every row keeps its count; in rows with a recorded gradient the k smallest |w| leave and
    the k largest |grad| inactive entries join, k = ceil(r_t * the row's count) (a NumPy reference); rows
    without a gradient do not change. With ``row_counts`` the rows hold different counts."""
    table = SparseTable(12, 8, density=0.5, random_state=0, row_balanced=True, row_counts=row_counts)
    counts = torch.full((12,), 4) if row_counts is None else torch.tensor(row_counts)
    assert table.budget == int(counts.sum()) == 48
    assert torch.equal(table.active_mask().sum(1), counts) and torch.equal(table.row_counts, counts)
    opt = torch.optim.Adam(table.parameters(), lr=1e-2)
    ds = DynamicSparsity([("t", table)], update_interval=2, update_ratio=0.5, end_step=6, optimizer=opt,
                         random_state=0, grad_window=2, balance="row")
    gen = torch.Generator().manual_seed(0)
    n_moved = 0
    for step in range(1, 7):
        rows = torch.tensor([0, 3, 3, 4, 5, 7, 8, 9]) if step % 4 else torch.tensor([1, 2, 5, 6])
        weights = torch.randn(rows.numel(), 8, generator=gen)
        opt.zero_grad()
        (table(rows) * weights).sum().backward()
        opt.step()
        if step % 2 == 0:   # an update step: the window is this step and the one before
            before_mask = table.active_mask().numpy()
            before_w = table.to_dense().detach().numpy()
            grad = np.zeros((12, 8))
            for r_idx, r in enumerate(rows.tolist()):
                grad[r] += weights[r_idx].numpy()
            grad += previous_grad
            ratio = ds.update_ratio_at(step)
        else:
            previous_grad = np.zeros((12, 8))
            for r_idx, r in enumerate(rows.tolist()):
                previous_grad[r] += weights[r_idx].numpy()
        changed = ds.step()
        _check_table(table, 48)
        assert torch.equal(table.active_mask().sum(1), counts)   # every row keeps its count
        if not changed:
            continue
        after_mask = table.active_mask().numpy()
        for r in range(12):
            k = update_count(ratio, int(counts[r]), 8 - int(counts[r]))
            if not np.any(grad[r]) or k == 0:
                assert np.array_equal(after_mask[r], before_mask[r])              # nothing to move: untouched
                continue
            # k left and k joined; no survivor is smaller than a pruned weight, no inactive entry that
            # stayed out has a larger |gradient| than a grown one (regrown weights can tie in magnitude)
            pruned, kept = before_mask[r] & ~after_mask[r], before_mask[r] & after_mask[r]
            grown, left_out = ~before_mask[r] & after_mask[r], ~before_mask[r] & ~after_mask[r]
            assert pruned.sum() == grown.sum() == k
            if kept.any():
                assert np.abs(before_w[r, pruned]).max() <= np.abs(before_w[r, kept]).min()
            if left_out.any():
                assert np.abs(grad[r, grown]).min() >= np.abs(grad[r, left_out]).max()
            n_moved += k
    assert n_moved > 0
    with pytest.raises(ValueError, match="row-balanced"):
        DynamicSparsity([("t", SparseTable(4, 4, density=0.5))], balance="row")
    with pytest.raises(ValueError, match="balance"):
        DynamicSparsity([("t", table)], balance="column")


def test_uniform_row_counts_are_the_row_balanced_table():
    """``row_counts`` all equal to ``round(density * dim)`` builds exactly the table ``row_balanced=True`` does."""
    uniform = SparseTable(30, 10, density=0.3, random_state=4, row_balanced=True)
    counted = SparseTable(30, 10, random_state=4, row_counts=np.full(30, 3))
    assert counted.row_balanced and counted.density == pytest.approx(0.3)
    assert torch.equal(uniform.indices, counted.indices) and torch.equal(uniform.values, counted.values)


def test_row_counts_are_checked():
    for bad in ([1, 2], np.full(4, 1.5), [0, 0, 0, 0], [1, 2, 5, 1], [-1, 2, 2, 1]):
        with pytest.raises(ValueError, match="row_counts"):
            SparseTable(4, 4, row_counts=bad)


@pytest.mark.parametrize("density, head_fraction, head_ratio", [(0.2, 0.25, 1.5), (0.5, 0.25, 1.5), (0.1, 0.1, 3.0),
                                                               (0.05, 0.5, 4.0), (1.0, 0.25, 1.5), (0.3, 0.0, 2.0)])
def test_degree_row_counts_give_the_busiest_rows_more_at_the_uniform_total(density, head_fraction, head_ratio):
    rng = np.random.RandomState(0)
    degrees = rng.zipf(2.0, size=1001).clip(max=10**6)
    counts = degree_row_counts(degrees, 64, density, head_fraction, head_ratio)
    mean = exact_budget(density, 64)
    assert counts.dtype == np.int64 and counts.sum() == 1001 * mean
    assert counts.min() >= 1 and counts.max() <= 64
    order = np.argsort(-degrees, kind="stable")
    assert np.all(np.diff(counts[order]) <= 0)        # never fewer weights than a less busy row
    n_head = int(np.ceil(head_fraction * 1001))
    if n_head and density < 1:
        head = min(64, int(head_ratio * mean))
        if n_head * head + (1001 - n_head) > 1001 * mean:   # the tail would be left empty: the head gives way
            head = (1001 * mean - (1001 - n_head)) // n_head
        assert np.all(counts[order[:n_head]] == head)
        assert counts[order[-1]] < mean                  # the tail pays for the head
    else:
        assert np.all(counts == mean)
    with pytest.raises(ValueError, match="degrees"):
        degree_row_counts([[1, 2]], 8, 0.5)
    with pytest.raises(ValueError, match="degrees"):
        degree_row_counts([1, -2], 8, 0.5)
    with pytest.raises(ValueError, match="head_fraction"):
        degree_row_counts([1, 2], 8, 0.5, head_fraction=1.0)
    with pytest.raises(ValueError, match="head_ratio"):
        degree_row_counts([1, 2], 8, 0.5, head_ratio=0.5)


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 18])
@pytest.mark.parametrize("n_grow", [0, 9, 12, 15])
def test_rewiring_moves_every_per_entry_tensor_like_a_dense_reference(chunk, n_grow):
    """Survivors keep their value (and state) under their position, grown positions take the fill, positions
    stay sorted; the budget may change; a just-pruned position may be regrown."""
    from recsys.sparse import Rewiring

    rng = np.random.RandomState(chunk + n_grow)
    numel = 60
    active = np.sort(rng.choice(numel, 25, replace=False))
    prune = rng.choice(25, 12, replace=False)
    inactive = np.setdiff1d(np.arange(numel), np.delete(active, prune))  # includes the pruned positions
    grown = np.sort(rng.choice(inactive, n_grow, replace=False))
    values = torch.tensor(rng.randn(25), dtype=torch.float32)
    plan = Rewiring(torch.tensor(active, dtype=torch.int32), torch.tensor(prune), torch.tensor(grown), chunk=chunk)
    fill = torch.arange(n_grow, dtype=torch.float32) + 100
    new_values = plan.move(values, fill)
    new_indices = plan.move(torch.tensor(active, dtype=torch.int32), torch.tensor(grown, dtype=torch.int32))
    reference = {int(p): float(v) for p, v in zip(np.delete(active, prune), np.delete(values.numpy(), prune))}
    reference.update({int(p): 100.0 + i for i, p in enumerate(grown)})
    assert plan.new_size == len(reference) == new_values.numel()
    assert new_indices.tolist() == sorted(reference)
    assert new_values.tolist() == [reference[p] for p in sorted(reference)]
    is_grown = torch.isin(new_indices, torch.tensor(grown, dtype=torch.int32))
    assert plan.move(values, 0)[is_grown].eq(0).all()
    scalar = plan.move(values, 2.5)
    assert scalar[is_grown].eq(2.5).all() and torch.equal(scalar[~is_grown], new_values[~is_grown])
    narrow = Rewiring(torch.tensor(active, dtype=torch.int32), torch.tensor(prune, dtype=torch.int32),
                      torch.tensor(grown, dtype=torch.int32), chunk=chunk)   # int32 slots and positions
    assert torch.equal(narrow.move(values, fill), new_values)
    if n_grow:
        for clash in (np.delete(active, prune)[:1], np.delete(active, prune)[-1:]):   # first and last kept
            with pytest.raises(RuntimeError, match="already active"):
                Rewiring(torch.tensor(active, dtype=torch.int32), torch.tensor(prune), torch.tensor(clash))


@pytest.mark.parametrize("k", [1, 2, 50, 199, 200])
def test_kth_largest_by_bisection_matches_sorting(k):
    from recsys.sparse.selection import _kth_largest

    rng = np.random.RandomState(k)
    values = torch.tensor(np.concatenate([rng.rand(150), np.zeros(20), np.full(30, 0.25)]), dtype=torch.float32)
    assert float(_kth_largest(values, k)) == float(torch.sort(values, descending=True).values[k - 1])
    signed = values - 0.5  # negative entries: falls back to torch.kthvalue
    assert float(_kth_largest(signed, k)) == float(torch.sort(signed, descending=True).values[k - 1])


@pytest.mark.parametrize("grad_window", [1, 3])
def test_update_without_a_recorded_gradient_is_an_error(grad_window):
    """An update step whose window saw no forward/backward pass (the accumulated vector exists but is empty,
    or no block was kept) says so instead of growing by zeros."""
    model = _Tables()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ds = DynamicSparsity(model, update_interval=3, optimizer=opt, random_state=0, grad_window=grad_window)
    ds.step()
    ds.step()
    with pytest.raises(RuntimeError, match="recorded no gradient"):
        ds.step()


def test_table_random_growth_without_a_generator_follows_the_tables_random_state():
    """prune_and_grow(grow="random") with no generator draws from the table's random_state (no fixed seed)."""
    def grown(seed):
        return SparseTable(30, 4, density=0.5, random_state=seed, device="cpu").prune_and_grow(5, grow="random")[1]

    assert torch.equal(grown(3), grown(3))
    # the generator is seeded with the next sub-seed of the table's random state
    table = SparseTable(30, 4, density=0.5, random_state=3, device="cpu")
    generator = torch.Generator().manual_seed(int(np.random.RandomState(3).randint(2**31 - 1)))
    assert torch.equal(table.prune_and_grow(5, grow="random", generator=generator)[1], grown(3))
