"""What a benchmark is: data sets, methods (ours and peers), seeds, goals, tables, references.

A spec is declared before anything runs; :func:`benchmarks.harness.run` executes it and
:func:`benchmarks.harness.render` turns its JSON into the report. Nothing measured is written in a
spec: goals name a metric, a comparison and a threshold, and the renderer judges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

SPLITS = ("validation", "test")


class Unavailable(Exception):
    """Raised by a data set's loader (its files are absent) or a method (its peer is not installed,
    no GPU): the run records why and goes on; the report lists it."""


@dataclass(frozen=True)
class Dataset:
    """A data set, loaded once per run.

    Parameters
    ----------
    name : str
        Its name in the rows and the report.
    load : callable
        ``load(quick: bool) -> object`` handed to every method; raise :class:`Unavailable`
        when the data is absent. In quick mode it may return a small stand-in.
    params : mapping
        Values that describe it in tables (e.g. ``{"snr": 20}``); a table can pivot on them.
    description : str
        One line for the report: what it is and where it comes from.
    """

    name: str
    load: Callable[[bool], Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Method:
    """One way of producing the metrics: ours, a peer, a floor or an oracle.

    Parameters
    ----------
    name : str
        Its name in rows, goals and tables.
    run : callable
        ``run(data, *, split, seed, meter, **settings) -> dict`` of float metrics. ``split`` is
        ``"validation"`` or ``"test"``: train on the training part and score on that split. Wrap the
        work to be timed in ``with meter:`` (or ``meter.repeat(function, n)``); unwrapped, the whole
        call is timed. A metric named ``seconds`` or ``peak_bytes`` replaces the meter's.
    settings : mapping
        Fixed keyword arguments for ``run``.
    grid : mapping
        Candidate values per keyword; every combination runs on the validation split and the one
        with the best mean ``select`` over seeds is the only one run on the test split.
    select : str
        The metric that chooses among the grid; ``maximize`` says which way is better.
    quick : mapping
        Settings that replace ``settings`` (and shrink ``grid`` to the first value of each
        keyword named here) in quick mode.
    kind : {"ours", "peer", "floor", "oracle"}
        How the report labels it.
    datasets : sequence of str, optional
        The data sets it runs on (all by default).
    isolate : bool
        Run each call in a fresh process, so that its peak memory is its own.
    seeds : sequence of int, optional
        The seeds it runs at, when fewer than the benchmark's: a deterministic figure computed once,
        or a peer too slow for every seed (a goal reading it at other seeds is then undecided). In
        quick mode it runs at the quick seeds it shares with these, or else at the first quick seed.
    checkpoint : str, optional
        A grid keyword one fit can score at every value on its way (typically ``"epochs"``). On the
        validation split the runner then makes one call per combination of the other keywords, with
        the largest value and ``checkpoints=[every value]``; ``run`` returns
        ``{"checkpoints": {value: metrics, ...}}`` and each value becomes a row of its own. The
        chosen value is then trained to afresh on the test split.
    description : str
        One line for the report: the configuration and where it comes from.
    """

    name: str
    run: Callable[..., Mapping[str, float]]
    settings: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    select: Optional[str] = None
    maximize: bool = True
    quick: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "ours"
    datasets: Optional[Sequence[str]] = None
    isolate: bool = False
    seeds: Optional[Sequence[int]] = None
    checkpoint: Optional[str] = None
    description: str = ""

    def __post_init__(self):
        if self.checkpoint is not None and self.checkpoint not in self.grid:
            raise ValueError(f"method {self.name!r}: checkpoint {self.checkpoint!r} is not a grid keyword")
        if self.kind not in ("ours", "peer", "floor", "oracle"):
            raise ValueError(f"method {self.name!r}: kind must be ours, peer, floor or oracle, not {self.kind!r}")
        if self.grid and self.select is None:
            raise ValueError(f"method {self.name!r} has a grid but no select metric to choose on validation")


@dataclass(frozen=True)
class Goal:
    """A target declared before the run and judged by the renderer.

    Parameters
    ----------
    text : str
        What is promised, e.g. ``"DSL at 0.2 within 5% of dense Recall@20"``.
    value : callable
        ``value(results, seed) -> float``: the quantity for one seed, from the rows of ``split``
        (see :class:`benchmarks.harness.Results`).
    compare : {">=", "<=", ">", "<"}
        How the mean over seeds must compare with ``threshold``.
    threshold : float
    tolerance : float
        The standard error of the mean over seeds (sd / sqrt(seeds)) below which the seeds are
        enough to judge; a larger one makes the verdict "undecided" (add seeds).
    split : {"test", "validation"}
    fmt : str
        How values are printed.
    kind : {"goal", "context"}
        ``"context"`` lines are printed with their values but carry no verdict.
    seeds : sequence of int, optional
        The seeds it is judged on, when the methods it reads run at fewer than the benchmark's
        (:class:`Method`'s ``seeds``); default every seed of the run.
    """

    text: str
    value: Callable[[Any, int], float]
    compare: str
    threshold: float
    tolerance: float
    split: str = "test"
    fmt: str = "{:.4g}"
    kind: str = "goal"
    seeds: Optional[tuple] = None

    def __post_init__(self):
        if self.compare not in (">=", "<=", ">", "<"):
            raise ValueError(f"goal {self.text!r}: compare must be one of >=, <=, >, <")
        if self.split not in SPLITS:
            raise ValueError(f"goal {self.text!r}: split must be one of {SPLITS}")
        if not self.tolerance > 0:
            raise ValueError(f"goal {self.text!r}: tolerance must be positive")


@dataclass(frozen=True)
class Reference:
    """A figure from elsewhere (a paper, an issue, the authors' run on another machine).

    It is printed in its own section with its source, never as measured here.
    """

    method: str
    dataset: str
    metrics: Mapping[str, float]
    source: str


@dataclass(frozen=True)
class Column:
    """A column of a table: a metric, its header and its format."""

    metric: str
    header: str = ""
    fmt: str = "{:.4f}"
    aggregate: str = "mean±std"   # or "mean", "median", "max", "min"
    scale: float = 1.0            # e.g. 2**-20 for bytes to MiB

    @property
    def label(self) -> str:
        return self.header or self.metric


@dataclass(frozen=True)
class Table:
    """A table of the report: one row per ``rows`` key, one column per metric (or per pivot value).

    Parameters
    ----------
    title : str
    columns : sequence of Column or str
    rows : sequence of str
        Row keys among ``"dataset"``, ``"method"``, ``"settings"`` and data set parameters.
    pivot : str, optional
        A data set parameter (or ``"dataset"``/``"method"``) whose values become the columns; then
        each cell shows every column's metric, joined by " / ".
    split : {"test", "validation"}
    datasets, methods : sequence of str, optional
        Filters.
    note : str
        A paragraph under the title.
    """

    title: str
    columns: Sequence[Any]
    rows: Sequence[str] = ("method",)
    pivot: Optional[str] = None
    split: str = "test"
    datasets: Optional[Sequence[str]] = None
    methods: Optional[Sequence[str]] = None
    note: str = ""


@dataclass(frozen=True)
class Benchmark:
    """A whole benchmark.

    Parameters
    ----------
    name : str
        Also the results' file names (``benchmarks/results/<name>.{json,md}``).
    title : str
    description : str
        The report's opening: method and paper, protocol details, what each peer is. Markdown.
    datasets : sequence of Dataset or callable
        A callable ``datasets(quick)`` may give fewer or smaller data sets in quick mode.
    methods : sequence of Method
    seeds : sequence of int
        At least 3 for a goal (the renderer says "undecided" with fewer).
    quick_seeds : sequence of int
    goals, references, tables : sequences
    threads : int
        Threads for torch and every BLAS pool.
    splits : sequence of str
        Splits every method is scored on; ``"test"`` always, add ``"validation"`` where a goal
        is also judged on the validation protocol. Grid methods always run on validation.
    code : sequence of str
        The packages whose code the results depend on; with the harness, this spec module and its
        private helpers (``benchmarks/_<name>*.py``) they make the code digest that decides whether
        rows of an earlier run may be reused.
    """

    name: str
    title: str
    description: str
    datasets: Any
    methods: Sequence[Method]
    seeds: Sequence[int] = (0, 1, 2)
    quick_seeds: Sequence[int] = (0,)
    goals: Sequence[Goal] = ()
    references: Sequence[Reference] = ()
    tables: Sequence[Table] = ()
    threads: int = 1
    splits: Sequence[str] = ("test",)
    code: Sequence[str] = ("tensorkit", "graphkit", "recsys")

    def dataset_list(self, quick: bool) -> list:
        return list(self.datasets(quick) if callable(self.datasets) else self.datasets)

    def method(self, name: str) -> Method:
        for method in self.methods:
            if method.name == name:
                return method
        raise KeyError(f"{self.name}: no method {name!r}")
