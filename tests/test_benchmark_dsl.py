"""The DSL benchmark runs end to end in quick mode and writes every section of its report."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_dsl_benchmark_writes_its_report(tmp_path):
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dsl_gowalla.py"), "--quick", "--goal-seeds", "1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = out.read_text()
    for section in ("## Goals", "## MF, 2 epochs", "## LightGCN (3 layers), 2 epochs", "- Machine:",
                    "quick mode", "Reference figures"):
        assert section in report, section
    assert "failed" not in report and "not run" not in report and "Traceback" not in report
    # every configuration measured: dense, DSL and static at 0.5, for both backbones
    assert report.count("| dense | 1 | 0.") == 2
    assert report.count("| DSL (ours: grow by the interval's gradient, regrown weights along it) | 0.5 | 0.") == 2
    paper = "| DSL (the paper's rules: grow by the last batch's gradient, regrown weights at zero) | 0.5 | 0."
    assert report.count(paper) == 2
    assert report.count("| static sparse (`fix=True`) | 0.5 | 0.") == 2
    # half of the weights are stored at density 0.5 (400 users + 300 items, d = 64)
    # the other budget rule than the defaults': row-balanced for MF, one budget per table for LightGCN
    assert report.count('| DSL, row-balanced budgets (`balance="row"`) | 0.5 | 0.') == 1
    assert report.count("| DSL, one budget per table (`balance=None`, the paper's) | 0.5 | 0.") == 1
    # LightGCN's per-row budgets that follow the degree, compared with the defaults over both seeds
    degree = 'DSL, per-row budgets that follow the degree (`balance="degree"`)'
    assert report.count(f"| {degree} | 0.5 | 0.") == 1 and report.count(f"| LightGCN | {degree} | 0.5 | 1 | 0.") == 1
    assert re.search(r"follow the degree against the defaults, Recall@20: 0\.5: 0\.\d{4} against 0\.\d{4} "
                     r"\(mean of 2 seeds, [+-]\d+\.\d%\)", report)
    assert report.count("22,400 of 44,800") == 9
    # the dense model with as many weights as density 0.5 (d = 32), for both backbones
    assert report.count("| dense, d = 32 (as many weights as density 0.5) | 0.5 | 0.") == 2
    assert report.count("22,400 of 22,400") == 2
    # shared dimensions of MF's sparse rows; a static uniform mask at 0.5 shares about 0.5² of 64 = 16 per pair
    static = re.search(r"\| static sparse \(`fix=True`\) \| 0\.5 \|.* ([\d.]+) / ([\d.]+) of ([\d.]+) \|", report)
    assert static is not None
    test_pairs, random_pairs, row = map(float, static.groups())
    assert abs(row - 32) < 1e-9 and 14 < random_pairs < 18 and 14 < test_pairs < 18
    assert report.count(" of 32.0 |") == 4
    for goal in ("DSL at 0.5 matches dense", "DSL beats static sparse", "peak training memory falls",
                 "An MF epoch under 10 s", "the paper's rule", "for scale (not a goal)"):
        assert goal in report, goal
    # the "match dense" goal rows again with seed 1, and that goal judged over both seeds
    assert "## The goals' rows with other seeds (1)" in report and "over the 2 seeds" in report
    assert report.count("| DSL (ours) | 0.5 | 1 | 0.") == 2 and report.count("| dense | 1 | 1 | 0.") == 2
    # the settings check on a validation split: dense and the four DSL settings at 0.5, for both backbones
    assert "## The chosen settings on a validation split" in report
    for setting in ("| 1 | dense |", "| 0.5 | once an epoch, regrown at zero, moments at zero, one budget per table |"):
        assert report.count(setting) == 2, setting
    alone, carried = "the window's gradient alone", "the gradient since an entry became inactive"
    per_table, row = "one budget per table", "row-balanced budgets"
    for backbone, ours, other, decay, other_decay, balance, other_balance in (
            ("MF", "from the window's mean gradient", "at zero", alone, carried, per_table, row),
            ("LightGCN", "at zero", "from the window's mean gradient", carried, alone, row, per_table)):
        assert report.count(f"| {backbone} | 0.5 | once an epoch, regrown along the gradient, Adam moments {ours}, "
                            f"growth by {decay}, {balance} (ours, the defaults) | 0.") == 1
        assert report.count(f"| {backbone} | 0.5 | the same (growth by {decay}) with {other_balance} | 0.") == 1
        assert report.count(f"| {backbone} | 0.5 | the same with Adam moments {other} | 0.") == 1
        assert report.count(f"| {backbone} | 0.5 | the same (moments {ours}) with growth by {other_decay} | 0.") == 1
    assert report.count("| MF | 0.5 | every 100 steps, regrown at zero, moments at zero, one budget per table "
                        "(the earlier settings) | 0.") == 1
    assert report.count("| LightGCN | 0.5 | every 6 steps, regrown at zero, moments at zero, one budget per table "
                        "(the earlier settings) | 0.") == 1
    assert len(re.findall(r"(MF|LightGCN) at 0\.5: (ours is the best of the 6|best is )", report)) == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_validation_rows_never_see_the_test_split():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import dsl_gowalla
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    spec = {"quick": True, "data_root": ""}
    train, test = dsl_gowalla.load_data(spec)
    fit_part, held_out = dsl_gowalla.load_data({**spec, "validation": True})

    def pairs(data):
        return set(zip(data.users.tolist(), data.items.tolist()))

    assert pairs(fit_part) | pairs(held_out) == pairs(train)
    assert not pairs(fit_part) & pairs(held_out) and not pairs(held_out) & pairs(test)
    assert abs(len(pairs(held_out)) / len(pairs(train)) - dsl_gowalla.VALIDATION_FRACTION) < 0.03
