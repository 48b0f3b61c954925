"""Run the authors' FunBaT code on our tensor files, to time it side by side with ours.

FunBaT is Fang et al., "Functional Bayesian Tucker Decomposition for Continuous-indexed Tensor
Data", ICLR 2024; the authors' code is github.com/xuangu-fang/Functional-Bayesian-Tucker-Decomposition
(MIT). None of it is copied into this repository: the user supplies a checkout (or a bare git
mirror) of it, :func:`run_reference` copies the few files it needs into a temporary directory and
runs their entry script there in a subprocess.

Steps of :func:`run_reference`:

- Code: ``tucker_continues.py`` (Tucker) or ``CP_continues.py`` (CP), ``utils_continues.py``,
  ``model_continues_mode_tensor.py``, ``model_LDS.py`` and ``config/`` are copied from the checkout,
  or taken with ``git archive HEAD`` from a bare mirror (their data files, partly git-LFS, are not
  needed and not taken).
- Data: fold ``fold`` of our ``.npz`` (``ndims``, ``train_coords_fold{k}``, ``train_y_fold{k}``,
  ``test_coords_fold{k}``, ``test_y_fold{k}``) becomes their "CONTI" file: a pickled dict with
  ``"data"`` (a list holding that one fold, so it is their fold 0), ``"ndims"``,
  ``"CONTI_2_DISCT_dicts"`` and ``"DISCT_2_CONTI_dicts"`` (one dict per mode, coordinate <-> bin).
  Each fold dict has ``tr_ind_DISCT``, ``tr_ind_CONTI``, ``tr_y``, ``te_ind_DISCT``,
  ``te_ind_CONTI``, ``te_y``, ``ndims`` and ``never_seen_test_idx`` (per mode, the sorted bin indices
  of test coordinates absent from training: their code reads these as bin indices and interpolates
  the latent functions there). These are all the keys their code reads (``make_data_dict``,
  ``make_LDS_continues_mode_paras`` and the model's ``__init__``); their own preprocessing also
  stored ``NORMAL_2_RAW_dicts`` / ``RAW_2_NORMAL_dicts``, which nothing reads. Their
  ``never_seen_test_idx`` listed every index absent from training; ours lists only those the test
  set uses, which gives the same test predictions and merges no empty bins. Bins are recovered
  exactly from our coordinates, ``scale * (b + 0.5) / n`` for bin ``b`` of ``n`` (``scale`` 1 for
  US-TEMP, 10 for Beijing, found from the data), so the continuous coordinates they see are the
  same ones our estimator sees.
- Config: their ``config/config_<dataset>_<method>.yaml`` with ``epoch`` = ``epochs``,
  ``data_path`` = the converted file, ``fold: 1``, ``device`` = ``device`` ("cpu": with "cuda"
  their code picks a GPU when there is one) and ``EVALU_EPOCH`` = ``evaluate_every``. Their
  configurations evaluate train and test RMSE every ``EVALU_EPOCH`` epochs inside the training
  loop (10 for US-TEMP Tucker, 5 for PM2.5 and SO2 Tucker, 100 for PM10 Tucker, 20 or 30 for CP);
  by default this module sets it to 0, which turns that evaluation off, so the timed epochs hold training only (pass
  ``evaluate_every=None`` to keep their value; the result's ``"evaluation_in_timing"`` says which).
- Run: ``sys.executable <launcher> <their script> --dataset <name> --R_U <rank> --num_fold 1
  --seed <seed> --machine funbat_reference`` with the temporary directory as working directory and
  ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` = 1. The launcher (written by
  this module) sets ``torch.set_num_threads(1)``, replaces ``tqdm.tqdm`` by a subclass that records
  ``time.perf_counter()`` around each iteration of their ``for epoch in tqdm.tqdm(range(EPOCH))``
  loop, then runs their script unchanged with ``runpy``. Each epoch's time is thus the loop body
  alone: data loading, model set-up and the final test are left out. (Their tqdm bar prints only a
  smoothed rate to two decimals, and their result log times the whole script; the tqdm rate is
  parsed only as a fallback.)
- Result: their final line ``fold: 0 ,test-error: {'rmse': tensor(...), 'MAE': tensor(...)}`` gives
  the test RMSE and MAE. For ``US_temp`` their script standardises the targets with the training
  mean and standard deviation before fitting and multiplies the errors back, so both are in °F.

Patches, applied to the temporary copy only and only where the original text is found (each is
listed in the result's ``"patches"``); both are needed with NumPy 2 (their requirements pin NumPy
1.23, PyTorch 1.13, tensorly 0.7) and change no computation:

1. ``model_continues_mode_tensor.py``: ``from numpy.lib import utils`` is removed. The name is never
   used, and NumPy 2 made ``numpy.lib.utils`` private, so the import fails (``ImportError``).
2. ``model_continues_mode_tensor.py``: ``np.product(`` becomes ``np.prod(`` (the Tucker core size
   ``R ** K``). NumPy 2 removed the ``np.product`` alias (``AttributeError``).

Nothing else was needed with PyTorch 2.13 (CPU), tensorly 0.10, SciPy 1.17, PyYAML 6 and tqdm 4.70
(Tucker and CP both run). Their modules also import matplotlib (unused), so the interpreter running
them needs it installed.

Measured with this module (fold 0, one thread, the shared 2-core CPU machine of this project):
US-TEMP Tucker rank 2: 0.24-0.36 s per epoch over four 3-epoch runs (the machine's load varies),
test RMSE 2.7645 °F after 3 epochs (the same in every run), 1.9946 °F after 200 epochs with their
``EVALU_EPOCH`` of 10 (0.25 s per epoch, evaluation included). PM2.5 Tucker rank 3: 0.98-1.07 s
per epoch, test RMSE 0.968 after 3 epochs, 0.3495 after 100 epochs with their ``EVALU_EPOCH`` of 5
(0.99 s per epoch). The final RMSEs match the data curator's (1.995 and 0.350, MANIFEST.txt), so
the converted files give their code the same data. The curator's times (3.7 and 3.3 s per epoch)
are not reproduced here. They may come from running without a thread limit: with torch's default
thread count (2 here), one 5-epoch US-TEMP run took 0.85 s per epoch, against 0.21-0.36 s with one
thread. Keep one thread on both sides when comparing.

It is the peer runner of the ``funbat_real`` benchmark (:mod:`benchmarks.funbat_real`), which calls
:func:`run_reference`. Alone, from the repository root: ``python -m benchmarks._funbat_real_reference
--repo PATH --dataset us_temp --rank 2 --epochs 3`` (``--dataset`` is a file name under
``../shared/data/tensors`` without ``.npz``, or a path).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from .paths import SHARED_DATA

DATA_DIR = SHARED_DATA / "tensors"
SCRIPTS = {"Tucker": "tucker_continues.py", "CP": "CP_continues.py"}
CODE_PATHS = (
    "tucker_continues.py",
    "CP_continues.py",
    "utils_continues.py",
    "model_continues_mode_tensor.py",
    "model_LDS.py",
    "config",
)
# Our file stems -> their dataset names (their config file names, and "US_temp" switches on the
# standardisation in their Tucker script).
DATASET_NAMES = {
    "us_temp": "US_temp",
    "beijing_PM25": "beijing_PM25",
    "beijing_PM10": "beijing_PM10",
    "beijing_SO2": "beijing_SO2",
}
COORDINATE_SCALES = (1.0, 10.0)  # coordinate of bin b of n: scale * (b + 0.5) / n
# (file, original text, replacement, why): see the module docstring.
PATCHES = (
    (
        "model_continues_mode_tensor.py",
        "from numpy.lib import utils\n",
        "",
        "unused import; numpy.lib.utils is private in NumPy 2 (ImportError)",
    ),
    (
        "model_continues_mode_tensor.py",
        "np.product(",
        "np.prod(",
        "np.product alias removed in NumPy 2 (AttributeError)",
    ),
)
CONVERTED_NAME = "CONTI_reference_fold.npy"
LAUNCHER_NAME = "_funbat_real_reference_launcher.py"
TIMING_MARK = "FUNBAT_REFERENCE_EPOCH_SECONDS "
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
STDERR_TAIL_CHARS = 2000

# Runs in the subprocess: one thread, per-iteration clock on their epoch loop, then their script.
LAUNCHER = f'''"""Written by benchmarks/_funbat_real_reference.py: times the epochs of the script it runs."""
import json
import runpy
import sys
import time

import torch
import tqdm

torch.set_num_threads(1)
_Bar = tqdm.tqdm


class _TimedBar(_Bar):
    def __iter__(self):
        stamps = [time.perf_counter()]
        for item in super().__iter__():
            yield item
            stamps.append(time.perf_counter())
        seconds = [after - before for before, after in zip(stamps, stamps[1:])]
        print({TIMING_MARK!r} + json.dumps(seconds), flush=True)


tqdm.tqdm = _TimedBar
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
'''


# --------------------------------------------------------------------------- their code


def _is_bare_git(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def copy_reference_code(repo_dir, destination) -> None:
    """Copy the authors' code and configurations into ``destination``.

    Parameters
    ----------
    repo_dir : path-like
        A checkout of their repository (holding ``tucker_continues.py``), or a bare git mirror of
        it (its ``HEAD`` commit is used).
    destination : path-like
        An existing directory.

    Raises
    ------
    FileNotFoundError
        If ``repo_dir`` is neither.
    """
    repo, destination = Path(repo_dir), Path(destination)
    if not repo.is_dir():
        raise FileNotFoundError(f"FunBaT reference repository not found: {repo} (pass --repo)")
    if (repo / SCRIPTS["Tucker"]).is_file():
        for name in CODE_PATHS:
            source = repo / name
            if source.is_dir():
                shutil.copytree(source, destination / name)
            elif source.is_file():
                shutil.copy2(source, destination / name)
        return
    if _is_bare_git(repo) or (repo / ".git").exists():
        _archive_from_git(repo, destination)
        return
    raise FileNotFoundError(
        f"{repo} holds neither {SCRIPTS['Tucker']} nor a git repository: expected a checkout of "
        "github.com/xuangu-fang/Functional-Bayesian-Tucker-Decomposition"
    )


def _archive_from_git(repo: Path, destination: Path) -> None:
    """Extract ``CODE_PATHS`` of ``HEAD`` (only those: their data blobs may be missing)."""
    git_dir = repo if _is_bare_git(repo) else repo / ".git"
    command = ["git", f"--git-dir={git_dir}", "archive", "--format=tar", "HEAD", "--", *CODE_PATHS]
    archive = subprocess.run(command, capture_output=True, check=False)
    if archive.returncode != 0:
        raise FileNotFoundError(
            f"git archive of the FunBaT code failed in {repo}: {archive.stderr.decode()[-500:]}"
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            tar.extractall(destination, filter="data")
        else:
            tar.extractall(destination)


def apply_patches(workdir) -> list:
    """Apply :data:`PATCHES` to the copy in ``workdir``; return ``"file: why"`` for each applied."""
    applied = []
    for name, original, replacement, why in PATCHES:
        path = Path(workdir) / name
        text = path.read_text()
        if original in text:
            path.write_text(text.replace(original, replacement))
            applied.append(f"{name}: {why}")
    return applied


def write_config(
    workdir, dataset_name: str, method: str, data_path: str, epochs: int,
    evaluate_every=0, device: str = "cpu", rank=None,
) -> dict:
    """Overwrite their ``config/config_<dataset_name>_<method>.yaml`` for this run.

    Parameters
    ----------
    workdir : path-like
        The temporary copy of their code.
    dataset_name, method : str
        Their dataset name (``"US_temp"``, ``"beijing_PM25"``, ...) and ``"Tucker"`` or ``"CP"``.
    data_path : str
        The converted data file, relative to ``workdir`` or absolute.
    epochs : int
        Their ``epoch``.
    evaluate_every : int or None, default=0
        Their ``EVALU_EPOCH``: train / test RMSE every that many epochs inside the timed loop;
        ``<= 0`` turns it off, ``None`` keeps their value.
    device : str, default="cpu"
        Their ``device``: ``"cpu"``, or anything else for CUDA when available.
    rank : int, optional
        Written as ``R_U`` (their script takes the rank from ``--R_U`` anyway).

    Returns
    -------
    dict
        The configuration written.
    """
    import yaml

    path = Path(workdir) / "config" / f"config_{dataset_name}_{method}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"their repository has no configuration {path.name}")
    config = yaml.safe_load(path.read_text())
    config.update(epoch=int(epochs), data_path=str(data_path), fold=1, device=device)
    if evaluate_every is not None:
        config["EVALU_EPOCH"] = int(evaluate_every)
    if rank is not None:
        config["R_U"] = int(rank)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config


# --------------------------------------------------------------------------- data


def coordinate_bins(coords: np.ndarray, n_bins: int, scale: float):
    """Bin indices of coordinates ``scale * (b + 0.5) / n_bins``, or None if they are not such."""
    bins = np.rint(coords * n_bins / scale - 0.5).astype(np.int64)
    inside = bins.size == 0 or (bins.min() >= 0 and bins.max() < n_bins)
    if inside and np.allclose(scale * (bins + 0.5) / n_bins, coords, rtol=0, atol=1e-9 * scale):
        return bins
    return None


def _mode_scale(coords: np.ndarray, n_bins: int) -> float:
    for scale in COORDINATE_SCALES:
        if coordinate_bins(coords, n_bins, scale) is not None:
            return scale
    raise ValueError(
        f"coordinates are not bin centres scale * (b + 0.5) / {n_bins} for any scale in "
        f"{COORDINATE_SCALES}"
    )


def _split_to_bins(coords: np.ndarray, ndims, scales) -> np.ndarray:
    columns = [coordinate_bins(coords[:, k], n, s) for k, (n, s) in enumerate(zip(ndims, scales))]
    if any(column is None for column in columns):
        raise ValueError("train and test coordinates disagree on the bin grid")
    return np.stack(columns, axis=1)


def convert_fold(dataset_npz, fold: int = 0) -> dict:
    """Fold ``fold`` of our ``.npz`` as their CONTI data dict (that fold is their fold 0).

    Parameters
    ----------
    dataset_npz : path-like
        One of our tensor files (``ndims``, ``train_coords_fold{k}``, ``train_y_fold{k}``,
        ``test_coords_fold{k}``, ``test_y_fold{k}``).
    fold : int, default=0
        Which of our folds.

    Returns
    -------
    dict
        ``{"ndims", "data": [fold dict], "CONTI_2_DISCT_dicts", "DISCT_2_CONTI_dicts"}``, to be
        saved with ``np.save`` (their code reads it with ``np.load(..., allow_pickle=True).item()``).
    """
    with np.load(dataset_npz) as arrays:
        ndims = [int(n) for n in arrays["ndims"]]
        train_coords = np.asarray(arrays[f"train_coords_fold{fold}"], dtype=np.float64)
        test_coords = np.asarray(arrays[f"test_coords_fold{fold}"], dtype=np.float64)
        train_y = np.asarray(arrays[f"train_y_fold{fold}"], dtype=np.float64).reshape(-1)
        test_y = np.asarray(arrays[f"test_y_fold{fold}"], dtype=np.float64).reshape(-1)
    scales = [_mode_scale(train_coords[:, k], n) for k, n in enumerate(ndims)]
    grids = [s * (np.arange(n) + 0.5) / n for n, s in zip(ndims, scales)]
    train_bins = _split_to_bins(train_coords, ndims, scales)
    test_bins = _split_to_bins(test_coords, ndims, scales)

    def continuous(bins):
        return np.stack([grids[k][bins[:, k]] for k in range(len(ndims))], axis=1)

    never_seen = [
        sorted(int(b) for b in np.setdiff1d(test_bins[:, k], train_bins[:, k]))
        for k in range(len(ndims))
    ]
    fold_dict = {
        "tr_ind_DISCT": train_bins,
        "tr_ind_CONTI": continuous(train_bins),
        "tr_y": train_y,
        "te_ind_DISCT": test_bins,
        "te_ind_CONTI": continuous(test_bins),
        "te_y": test_y,
        "ndims": ndims,
        "never_seen_test_idx": never_seen,
    }
    return {
        "ndims": ndims,
        "data": [fold_dict],
        "CONTI_2_DISCT_dicts": [{float(t): b for b, t in enumerate(grid)} for grid in grids],
        "DISCT_2_CONTI_dicts": [{b: float(t) for b, t in enumerate(grid)} for grid in grids],
    }


# --------------------------------------------------------------------------- output


def parse_test_error(stdout: str):
    """``(rmse, mae)`` from their last ``fold: .. ,test-error: {...}`` line, NaN where absent."""
    lines = [line for line in stdout.splitlines() if "test-error:" in line]
    if not lines:
        return math.nan, math.nan
    values = []
    for key in ("rmse", "MAE"):
        found = re.search(rf"'{key}':\s*(?:tensor\()?\s*([-+0-9.eE]+|nan|inf)", lines[-1])
        values.append(float(found.group(1)) if found else math.nan)
    return tuple(values)


def parse_epoch_seconds(stdout: str):
    """The per-epoch seconds the launcher printed, or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(TIMING_MARK):
            return [float(s) for s in json.loads(line[len(TIMING_MARK):])]
    return None


def parse_tqdm_seconds_per_epoch(stderr: str) -> float:
    """Seconds per epoch from the last rate on their tqdm bar (smoothed, 2 decimals), or NaN."""
    rates = re.findall(r"([0-9.]+)(s/it|it/s)\]", stderr)
    if not rates:
        return math.nan
    value, unit = rates[-1]
    value = float(value)
    return value if unit == "s/it" else (1.0 / value if value > 0 else math.nan)


# --------------------------------------------------------------------------- run


def _environment() -> dict:
    environment = dict(os.environ)
    environment.update({name: "1" for name in THREAD_VARIABLES})
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment


def _tail(text) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-STDERR_TAIL_CHARS:]


def prepare_workdir(
    repo_dir, dataset_npz, dataset_name: str, workdir, method: str = "Tucker", rank: int = 2,
    epochs: int = 5, fold: int = 0, evaluate_every=0, device: str = "cpu",
) -> dict:
    """Fill ``workdir`` with their patched code, the converted fold, the config and the launcher.

    Parameters are those of :func:`run_reference`. Returns ``{"patches", "config"}``.
    """
    workdir = Path(workdir)
    copy_reference_code(repo_dir, workdir)
    if not (workdir / SCRIPTS[method]).is_file():
        raise FileNotFoundError(f"their repository has no {SCRIPTS[method]}")
    patches = apply_patches(workdir)
    np.save(workdir / CONVERTED_NAME, convert_fold(dataset_npz, fold), allow_pickle=True)
    config = write_config(
        workdir, dataset_name, method, f"./{CONVERTED_NAME}", epochs, evaluate_every, device, rank
    )
    (workdir / LAUNCHER_NAME).write_text(LAUNCHER)
    return {"patches": patches, "config": config}


def run_reference(
    repo_dir, dataset_npz, dataset_name=None, method: str = "Tucker", rank: int = 2,
    epochs: int = 5, fold: int = 0, timeout: float = 1800.0, seed: int = 321,
    evaluate_every=0, device: str = "cpu", keep_workdir=None,
) -> dict:
    """Fit the authors' FunBaT on one of our folds and time its epochs.

    Parameters
    ----------
    repo_dir : path-like
        Checkout or bare git mirror of github.com/xuangu-fang/Functional-Bayesian-Tucker-Decomposition.
    dataset_npz : path-like
        One of our tensor files, e.g. ``../shared/data/tensors/us_temp.npz``.
    dataset_name : str, optional
        Their dataset name (``"US_temp"``, ``"beijing_PM25"``, ...), which picks their
        configuration; by default looked up from the file name in :data:`DATASET_NAMES`.
    method : {"Tucker", "CP"}, default="Tucker"
        Their ``tucker_continues.py`` or ``CP_continues.py``.
    rank : int, default=2
        ``--R_U``.
    epochs : int, default=5
        Their ``epoch``.
    fold : int, default=0
        Our fold (run as their fold 0, with ``--num_fold 1``).
    timeout : float, default=1800
        Seconds before the subprocess is killed.
    seed : int, default=321
        ``--seed`` (their default).
    evaluate_every : int or None, default=0
        Their ``EVALU_EPOCH``; 0 keeps evaluation out of the timed epochs, ``None`` keeps theirs.
    device : str, default="cpu"
        Their ``device``.
    keep_workdir : path-like, optional
        Build and keep the working copy there (an empty or new directory) instead of a temporary
        directory removed afterwards.

    Returns
    -------
    dict
        ``seconds_per_epoch`` (mean over the timed epochs), ``total_seconds`` (their sum: the epoch
        loop), ``epoch_seconds`` (each epoch), ``epochs``, ``test_rmse``, ``test_mae`` (their final
        test errors, NaN when absent), ``returncode`` (None on timeout), ``stderr_tail``,
        ``process_seconds`` (the whole subprocess), ``timing_source`` (``"launcher"`` or ``"tqdm"``),
        ``evaluation_in_timing``, ``patches``, ``method``, ``dataset``, ``rank``, ``fold``.

    Raises
    ------
    FileNotFoundError
        If ``repo_dir`` is not their repository, or a script or configuration is missing.
    """
    if method not in SCRIPTS:
        raise ValueError(f"method must be one of {sorted(SCRIPTS)}, not {method!r}")
    dataset_npz = Path(dataset_npz)
    if dataset_name is None:
        dataset_name = DATASET_NAMES.get(dataset_npz.stem)
        if dataset_name is None:
            raise ValueError(f"no FunBaT dataset name known for {dataset_npz.name}: pass dataset_name")
    if keep_workdir is not None:
        Path(keep_workdir).mkdir(parents=True, exist_ok=True)
        return _run_in(Path(keep_workdir), repo_dir, dataset_npz, dataset_name, method, rank,
                       epochs, fold, timeout, seed, evaluate_every, device)
    with tempfile.TemporaryDirectory(prefix="funbat_reference_") as workdir:
        return _run_in(Path(workdir), repo_dir, dataset_npz, dataset_name, method, rank,
                       epochs, fold, timeout, seed, evaluate_every, device)


def _run_in(workdir, repo_dir, dataset_npz, dataset_name, method, rank, epochs, fold, timeout,
            seed, evaluate_every, device) -> dict:
    prepared = prepare_workdir(repo_dir, dataset_npz, dataset_name, workdir, method, rank, epochs,
                               fold, evaluate_every, device)
    command = [
        sys.executable, LAUNCHER_NAME, SCRIPTS[method], "--dataset", dataset_name,
        "--R_U", str(rank), "--num_fold", "1", "--seed", str(seed), "--machine", "funbat_reference",
    ]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=workdir, env=_environment(), capture_output=True,
                              text=True, timeout=timeout, check=False)
        stdout, stderr, returncode = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        stdout, stderr, returncode = _tail(expired.stdout), _tail(expired.stderr), None
    process_seconds = time.perf_counter() - start

    epoch_seconds, source = parse_epoch_seconds(stdout), "launcher"
    if epoch_seconds is not None:
        total = float(np.sum(epoch_seconds))
        per_epoch = total / len(epoch_seconds) if epoch_seconds else math.nan
    else:  # the loop did not finish (error, timeout): the last rate on their bar
        source = "tqdm"
        per_epoch = parse_tqdm_seconds_per_epoch(stderr)
        total = per_epoch * epochs
    rmse, mae = parse_test_error(stdout)
    evaluation = prepared["config"].get("EVALU_EPOCH", 0)
    return {
        "seconds_per_epoch": per_epoch,
        "total_seconds": total,
        "epoch_seconds": epoch_seconds,
        "epochs": int(epochs),
        "test_rmse": rmse,
        "test_mae": mae,
        "returncode": returncode,
        "stderr_tail": _tail(stderr),
        "process_seconds": process_seconds,
        "timing_source": source,
        "evaluation_in_timing": bool(evaluation and evaluation > 0),
        "patches": prepared["patches"],
        "method": method,
        "dataset": dataset_name,
        "rank": int(rank),
        "fold": int(fold),
    }


# --------------------------------------------------------------------------- CLI


def _dataset_path(dataset: str) -> Path:
    path = Path(dataset)
    if path.suffix == ".npz" or path.exists():
        return path
    return DATA_DIR / f"{dataset}.npz"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, help="checkout or bare git mirror of their code")
    parser.add_argument("--dataset", default="us_temp", help="our file stem (us_temp, ...) or path")
    parser.add_argument("--name", default=None, help="their dataset name (default: from the file)")
    parser.add_argument("--method", default="Tucker", choices=sorted(SCRIPTS))
    parser.add_argument("--rank", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=321)
    parser.add_argument("--evaluate-every", type=int, default=0,
                        help="their EVALU_EPOCH (0: no evaluation inside the timed loop; -1: theirs)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--keep-workdir", default=None, help="build and keep the working copy here")
    args = parser.parse_args(argv)
    result = run_reference(
        args.repo, _dataset_path(args.dataset), args.name, method=args.method, rank=args.rank,
        epochs=args.epochs, fold=args.fold, timeout=args.timeout, seed=args.seed,
        evaluate_every=None if args.evaluate_every < 0 else args.evaluate_every,
        keep_workdir=args.keep_workdir,
    )
    print(json.dumps(result, indent=2))
    return 0 if result["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
