"""The benchmark harness: settings chosen on validation only, checkpoints, goals judged by code,
rows reused only for the same code, failures recorded, reports rendered from the JSON alone."""

import json

import numpy as np
import pytest

from benchmarks.harness import Benchmark, Column, Dataset, Goal, Meter, Method, Reference, Results, Table, Unavailable
from benchmarks.harness import judge, read_json, render, run
from benchmarks.harness import runner as runner_module
from benchmarks.harness.runner import plain


def toy_data(quick):
    return {"offset": 0.0}


def scored(data, *, split, seed, meter, c=0, epochs=None, checkpoints=None):
    """Validation peaks at c=1, test at c=2: choosing on test would give 2."""
    best = 1 if split == "validation" else 2
    with meter:
        score = 1.0 - abs(c - best) + 0.001 * seed
    return {"score": score}


def benchmark(methods, goals=(), seeds=(0, 1, 2), tables=(), references=(), name="toy"):
    return Benchmark(name=name, title="Toy", description="A toy benchmark.", datasets=[Dataset("toy", toy_data)],
                     methods=methods, seeds=seeds, goals=goals, tables=tables, references=references)


def run_toy(tmp_path, spec, **kwargs):
    path = run(spec, out_dir=tmp_path, progress=False, **kwargs)
    return path, read_json(path)


def test_grid_is_chosen_on_validation_and_only_the_choice_runs_on_test(tmp_path):
    spec = benchmark([Method("ours", scored, grid={"c": [0, 1, 2]}, select="score")])
    _, record = run_toy(tmp_path, spec)
    validation = [row for row in record["rows"] if row["split"] == "validation"]
    test = [row for row in record["rows"] if row["split"] == "test"]
    assert sorted({row["settings"]["c"] for row in validation}) == [0, 1, 2] and len(validation) == 9
    assert {row["settings"]["c"] for row in test} == {1} and len(test) == 3
    assert record["choices"][0]["chosen"] == {"c": 1}
    assert record["choices"][0]["scores"][1] == pytest.approx(1.001)


def test_minimised_selection_and_quick_settings(tmp_path):
    spec = benchmark([Method("ours", scored, grid={"c": [0, 1, 2]}, select="score", maximize=False,
                             quick={"c": 0})], )
    _, record = run_toy(tmp_path, spec)
    assert record["choices"][0]["chosen"] in ({"c": 0}, {"c": 2})  # both 1 away from the validation peak
    _, quick = run_toy(tmp_path / "quick", spec, quick=True)
    assert {row["settings"]["c"] for row in quick["rows"]} == {0} and quick["seeds"] == [0]


def test_checkpoints_score_every_value_in_one_call(tmp_path):
    calls = []

    def trained(data, *, split, seed, meter, lr, epochs, checkpoints=None):
        calls.append((split, lr, epochs, checkpoints))
        curve = {value: {"score": -abs(value - 20) - lr} for value in (checkpoints or [epochs])}
        return {"checkpoints": curve} if checkpoints else curve[epochs]

    spec = benchmark([Method("ours", trained, grid={"epochs": [10, 20, 30], "lr": [0.0, 0.5]}, select="score",
                             checkpoint="epochs")])
    _, record = run_toy(tmp_path, spec)
    validation_calls = [call for call in calls if call[0] == "validation"]
    assert len(validation_calls) == 2 * 3 and all(call[2] == 30 and call[3] == [10, 20, 30] for call in validation_calls)
    assert len([row for row in record["rows"] if row["split"] == "validation"]) == 3 * 2 * 3
    assert record["choices"][0]["chosen"] == {"epochs": 20, "lr": 0.0}
    assert [call for call in calls if call[0] == "test"] == [("test", 0.0, 20, None)] * 3


def test_checkpoint_must_be_a_grid_keyword():
    with pytest.raises(ValueError, match="not a grid keyword"):
        Method("ours", scored, grid={"c": [0]}, select="score", checkpoint="epochs")
    with pytest.raises(ValueError, match="no select"):
        Method("ours", scored, grid={"c": [0]})


def goal_results(values_by_seed):
    rows = [{"status": "ok", "dataset": "toy", "method": "ours", "kind": "ours", "split": "test", "seed": seed,
             "settings": {}, "dataset_params": {}, "metrics": {"gap": value}} for seed, value in values_by_seed.items()]
    return Results(rows)


def gap_goal(tolerance, kind="goal"):
    return Goal("gap at most 1", lambda r, seed: r.value("gap", method="ours", seed=seed), "<=", 1.0,
                tolerance=tolerance, kind=kind)


def test_goal_verdicts_follow_the_mean_and_the_spread():
    steady = goal_results({0: 0.5, 1: 0.6, 2: 0.7})
    assert judge(gap_goal(0.5), steady, [0, 1, 2])["verdict"] == "yes"
    failing = goal_results({0: 1.5, 1: 1.6, 2: 1.4})
    assert judge(gap_goal(0.5), failing, [0, 1, 2])["verdict"] == "no"
    noisy = goal_results({0: 0.0, 1: 2.0, 2: 0.5})
    judged = judge(gap_goal(0.5), noisy, [0, 1, 2])
    assert judged["verdict"] == "undecided" and "more seeds needed" in judged["why"]
    assert judged["sd"] == pytest.approx(np.std([0.0, 2.0, 0.5], ddof=1))
    assert judged["standard_error"] == pytest.approx(judged["sd"] / np.sqrt(3))
    # a mean clear of the target by two standard errors is judged, however noisy
    far = judge(gap_goal(0.01), goal_results({0: 5.0, 1: 7.0, 2: 6.0}), [0, 1, 2])
    assert far["verdict"] == "no" and far["standard_error"] > 0.01
    # the same spread over more seeds pins the mean down: then it is judged
    many = goal_results({seed: value for seed, value in enumerate([0.0, 2.0, 0.5] * 12)})
    assert judge(gap_goal(0.5), many, list(range(36)))["verdict"] == "yes"  # mean 0.83
    assert judge(gap_goal(0.5), goal_results({0: 0.5, 1: 0.6}), [0, 1])["verdict"] == "undecided"
    missing = judge(gap_goal(0.5), goal_results({0: 0.5, 1: 0.6}), [0, 1, 2])
    assert missing["verdict"] == "undecided" and 2 in missing["missing"]
    assert judge(gap_goal(0.5), goal_results({}), [0, 1, 2])["verdict"] == "not measured"
    assert judge(gap_goal(0.5, kind="context"), steady, [0, 1, 2])["verdict"] is None


def test_goal_declaration_is_checked():
    with pytest.raises(ValueError, match="tolerance"):
        Goal("g", lambda r, s: 0.0, "<=", 1.0, tolerance=0.0)
    with pytest.raises(ValueError, match="compare"):
        Goal("g", lambda r, s: 0.0, "=<", 1.0, tolerance=0.1)


def test_rows_are_reused_only_for_the_same_code(tmp_path, monkeypatch):
    calls = []

    def counted(data, *, split, seed, meter):
        calls.append(seed)
        return {"score": float(seed)}

    spec = benchmark([Method("ours", counted)])
    run_toy(tmp_path, spec)
    assert len(calls) == 3
    _, record = run_toy(tmp_path, spec, resume=True)
    assert len(calls) == 3 and record["reused_rows"] == 3
    monkeypatch.setattr(runner_module, "code_digest", lambda *args: "another-digest")
    _, record = run_toy(tmp_path, spec, resume=True)
    assert len(calls) == 6 and record["reused_rows"] == 0
    assert {row["code_digest"] for row in record["rows"]} == {"another-digest"}


def test_failures_and_unavailable_peers_are_recorded_and_the_run_goes_on(tmp_path):
    def broken(data, *, split, seed, meter):
        raise ValueError("diverged")

    def absent(data, *, split, seed, meter):
        raise Unavailable("peer not installed")

    spec = benchmark([Method("broken", broken), Method("peer", absent, kind="peer"), Method("ours", scored)])
    path, record = run_toy(tmp_path, spec)
    statuses = {(row["method"], row["status"]) for row in record["rows"]}
    assert statuses == {("broken", "failed"), ("peer", "unavailable"), ("ours", "ok")}
    assert all("diverged" in row["error"] for row in record["rows"] if row["method"] == "broken")
    report = render(spec, path).read_text()
    assert "## Runs that did not complete" in report and "diverged" in report and "peer not installed" in report


def test_a_goal_on_an_unavailable_data_set_says_so_once(tmp_path):
    def no_device(quick):
        raise Unavailable("no CUDA device")

    spec = Benchmark(name="toy", title="Toy", description="A toy benchmark.",
                     datasets=[Dataset("toy", toy_data), Dataset("gpu", no_device)], methods=[Method("ours", scored)],
                     goals=[Goal("ours on gpu", lambda r, seed: r.value("score", method="ours", dataset="gpu", seed=seed),
                                 ">=", 0.0, tolerance=0.1),
                            Goal("ours from a row nobody ran", lambda r, seed: r.value("score", method="theirs", seed=seed),
                                 ">=", 0.0, tolerance=0.1)])
    path, _ = run_toy(tmp_path, spec)
    report = render(spec, path).read_text()
    assert "- ours on gpu: **not measured** (not measured: gpu was not run (no CUDA device);" in report
    assert report.count("'seed': ...") == 1 and "'seed': 0" not in report


def test_report_is_rendered_from_the_json_with_judged_goals_and_labelled_references(tmp_path):
    goals = [Goal("ours scores at least -0.5", lambda r, seed: r.value("score", method="ours", seed=seed), ">=", -0.5,
                  tolerance=0.01),
             Goal("ours scores at least 2", lambda r, seed: r.value("score", method="ours", seed=seed), ">=", 2.0,
                  tolerance=0.01)]
    spec = benchmark([Method("ours", scored, grid={"c": [0, 1, 2]}, select="score"),
                      Method("peer", scored, kind="peer")], goals=goals,
                     tables=[Table("Scores", columns=[Column("score", "score", "{:.3f}"), "seconds"])],
                     references=[Reference("theirs", "toy", {"score": 0.95}, "their paper, Table 2")])
    path, _ = run_toy(tmp_path, spec)
    report = render(spec, path).read_text()
    # chosen on validation (c=1), ours scores 1 - |1 - 2| on test; the peer's default c=0 scores 1 - 2
    assert "- ours scores at least -0.5: yes (mean 0.001, standard error 0.0005774, sd 0.001 over 3 seeds" in report
    assert "- ours scores at least 2: **no**" in report
    assert "## Settings chosen on the validation split" in report and "| ours | toy | c=1 |" in report
    assert "| ours | 0.001 ± 0.001 |" in report and "| peer (peer) | -0.999 ± 0.001 |" in report
    assert "## Figures from elsewhere (not measured here)" in report and "their paper, Table 2" in report
    record = read_json(path)
    assert [goal["verdict"] for goal in record["goals"]] == ["yes", "no"]
    assert record["stamp"]["code_digest"] and "torch" in record["stamp"]["versions"]
    assert render(spec, path).read_text() == report  # the JSON alone determines the report


def test_pivot_table_puts_data_set_parameters_in_columns(tmp_path):
    def sized(data, *, split, seed, meter):
        return {"score": data["size"] * 1.0}

    spec = Benchmark(name="toy", title="Toy", description="d", methods=[Method("ours", sized)],
                     datasets=[Dataset(f"n={size}", lambda quick, size=size: {"size": size}, params={"n": size})
                               for size in (10, 20)],
                     tables=[Table("By size", columns=[Column("score", fmt="{:.0f}", aggregate="mean")], pivot="n")])
    path, _ = run_toy(tmp_path, spec)
    report = render(spec, path).read_text()
    assert "| method | n = 10 | n = 20 |" in report and "| ours | 10 | 20 |" in report


def test_meter_measures_the_block_it_wraps():
    meter = Meter()
    with meter:
        block = np.ones(50_000_000)  # 400 MB
        block[::512] = 2.0
    assert meter.seconds > 0
    if meter.peak_bytes is not None:  # Linux
        assert meter.peak_bytes > 300 * 2**20
    timed = Meter()
    assert timed.repeat(lambda: 7, repeats=3) == 7 and timed.used


def test_metrics_are_kept_as_plain_json():
    assert plain(np.float32(0.5)) == 0.5 and plain(float("nan")) is None and plain([np.int64(3)]) == [3]
    with pytest.raises(TypeError, match="not a number"):
        plain(object())


def test_a_method_can_run_at_fewer_seeds(tmp_path):
    spec = benchmark([Method("once", scored, seeds=(0,)), Method("ours", scored)],
                     goals=[Goal("once scores", lambda r, seed: r.value("score", method="once", seed=seed), ">=", -5.0,
                                 tolerance=1.0)])
    path, record = run_toy(tmp_path, spec)
    assert sorted(row["seed"] for row in record["rows"] if row["method"] == "once") == [0]
    assert sorted(row["seed"] for row in record["rows"] if row["method"] == "ours") == [0, 1, 2]
    render(spec, path)
    assert read_json(path)["goals"][0]["verdict"] == "undecided"


def test_a_run_of_some_methods_keeps_the_rows_of_the_others(tmp_path):
    spec = benchmark([Method("MF dense", scored), Method("MF sparse", scored, grid={"c": [0, 1]}, select="score"),
                      Method("LightGCN dense", scored)])
    run_toy(tmp_path, spec, methods=["MF *"])
    _, record = run_toy(tmp_path, spec, methods=["LightGCN *"])
    assert {row["method"] for row in record["rows"]} == {"MF dense", "MF sparse", "LightGCN dense"}
    assert [choice["method"] for choice in record["choices"]] == ["MF sparse"]
    with pytest.raises(ValueError, match="no method matches"):
        run_toy(tmp_path, spec, methods=["GRU*"])


def test_an_interrupted_run_resumes_from_its_partial_rows(tmp_path):
    calls, interrupt = [], {"at seed": 2}

    def fragile(data, *, split, seed, meter):
        calls.append(seed)
        if seed == interrupt["at seed"]:
            raise KeyboardInterrupt  # the machine goes away mid-run
        return {"score": float(seed)}

    spec = benchmark([Method("ours", fragile)])
    with pytest.raises(KeyboardInterrupt):
        run_toy(tmp_path, spec)
    assert (tmp_path / "toy.partial.jsonl").exists() and not (tmp_path / "toy.json").exists()
    with open(tmp_path / "toy.partial.jsonl", "a") as handle:
        handle.write('{"dataset": "toy", "meth')  # killed in the middle of a line
    with pytest.raises(KeyboardInterrupt):  # interrupted again: the partial file keeps its rows, the cut line dropped
        run_toy(tmp_path, spec, resume=True)
    assert calls == [0, 1, 2, 2] and len((tmp_path / "toy.partial.jsonl").read_text().splitlines()) == 2
    interrupt["at seed"] = None
    _, record = run_toy(tmp_path, spec, resume=True)
    assert calls == [0, 1, 2, 2, 2] and record["reused_rows"] == 2
    assert not (tmp_path / "toy.partial.jsonl").exists()


def test_rows_a_resumed_run_had_not_reached_survive_a_second_interruption(tmp_path):
    interrupt = {"ours": 1, "later": 2}

    def fragile(name):
        def run(data, *, split, seed, meter):
            if seed == interrupt[name]:
                raise KeyboardInterrupt
            return {"score": float(seed)}
        return run

    spec = benchmark([Method("ours", fragile("ours")), Method("later", fragile("later"))])
    with pytest.raises(KeyboardInterrupt):
        run_toy(tmp_path, spec, methods=["later"])   # "later" measured at seeds 0 and 1, then cut
    with pytest.raises(KeyboardInterrupt):
        run_toy(tmp_path, spec, resume=True)          # cut inside "ours", before reaching "later" again
    partial = tmp_path / "toy.partial.jsonl"
    methods = [json.loads(line)["method"] for line in partial.read_text().splitlines()]
    assert sorted(methods) == ["later", "later", "ours"]
    interrupt.update(ours=None, later=None)
    _, record = run_toy(tmp_path, spec, resume=True)
    assert record["reused_rows"] == 3 and len(record["rows"]) == 6


def test_machine_load_is_recorded_per_row_and_reported(tmp_path, monkeypatch):
    loads = iter([0.5, 3.5, 1.0, 9.0])
    monkeypatch.setattr(runner_module.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    spec = benchmark([Method("ours", scored)], seeds=(0, 1, 2, 3))
    path, record = run_toy(tmp_path, spec)
    assert [row["load_average"] for row in record["rows"]] == [0.5, 3.5, 1.0, 9.0]
    cores = record["stamp"]["machine"]["cores"]
    busy = sum(load > cores for load in (0.5, 3.5, 1.0, 9.0))
    assert (f"median 2.25, max 9.00; {busy} of 4 rows finished with more runnable processes than cores"
            in render(spec, path).read_text())


def test_a_goal_reading_a_row_a_seed_lacks_is_missing_for_that_seed(tmp_path):
    """A method run at fewer seeds leaves the other seeds without a value (not a crash of the renderer)."""
    goal = Goal("ours' first row at least 0", lambda r, seed: r.rows(method="ours", seed=seed)[0]["metrics"]["score"],
                ">=", 0.0, tolerance=0.1)
    spec = benchmark([Method("ours", scored, seeds=(0,))], goals=[goal])
    path, _ = run_toy(tmp_path, spec)
    report = render(spec, path).read_text()
    record = read_json(path)
    assert record["goals"][0]["verdict"] == "undecided" and set(record["goals"][0]["missing"]) == {"1", "2"}
    assert "ours' first row at least 0: **undecided**" in report


def test_a_goal_with_its_own_seeds_is_judged_on_those_only(tmp_path):
    """Methods run at 3 of the benchmark's 4 seeds: a goal declaring those seeds is decided."""
    goal = Goal("ours' score at least -5", lambda r, seed: r.value("score", method="ours", seed=seed), ">=", -5.0,
                tolerance=0.1, seeds=(0, 1, 2))
    spec = benchmark([Method("ours", scored, seeds=(0, 1, 2)), Method("other", scored)], goals=[goal],
                     seeds=(0, 1, 2, 3))
    path, _ = run_toy(tmp_path, spec)
    render(spec, path)
    judged = read_json(path)["goals"][0]
    assert judged["verdict"] == "yes" and set(judged["values"]) == {"0", "1", "2"} and not judged["missing"]


def test_results_store_what_rows_share_once_and_read_back_whole(tmp_path):
    spec = benchmark([Method("ours", scored, grid={"c": [0, 1]}, select="score")])
    path, record = run_toy(tmp_path, spec)
    raw = json.loads(path.read_text())
    assert set(raw["row_defaults"]) == {"commit", "code_digest", "quick"} and raw["dataset_params"] == {"toy": {}}
    assert all("commit" not in row and "dataset_params" not in row for row in raw["rows"])
    assert len(path.read_text().splitlines()) > len(raw["rows"])   # one row a line
    assert all(row["commit"] == record["stamp"]["commit"] and row["dataset_params"] == {} for row in record["rows"])
    render(spec, path)   # the renderer reads and writes the packed form
    assert read_json(path)["rows"] == record["rows"]
