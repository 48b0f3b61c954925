"""The benchmark harness: declared specs, one runner, one renderer. See ``benchmarks/README.md``."""

from .measure import Meter
from .render import render
from .results import Results, judge
from .runner import load_benchmark, read_json, run
from .spec import Benchmark, Column, Dataset, Goal, Method, Reference, Table, Unavailable

__all__ = ["Benchmark", "Column", "Dataset", "Goal", "Meter", "Method", "Reference", "Results", "Table",
           "Unavailable", "judge", "load_benchmark", "read_json", "render", "run"]
