"""The ``recsys`` command line: train a CTR model or a DSL recommender, and compress a CTR model.

- ``recsys train-ctr DATA... --model deepfm --out model.pkl``: a :class:`recsys.CTRClassifier` trained
  on click logs streamed from files (Criteo, Avazu or Parquet);
- ``recsys train-dsl TRAIN_FILE --density 0.2 --out model.pkl``: a :class:`recsys.DSLRecommender`
  on implicit feedback (LightGCN ``train.txt``, MovieLens ``u.data``, RecBole ``.inter``, pair files);
- ``recsys compress model.pkl DATA... --method afm --ratio 4 --out small.pkl``: :func:`recsys.ctr.compress`
  with a calibration sample streamed from DATA.

Every command writes a pickle that appears only once it is complete; under ``torchrun`` the library
trains over the ranks, and only rank 0 writes the output and prints. :func:`main` returns the exit
status: 0, 1 for a failure (a missing or unreadable file, a failed fit), 2 for a usage error (one
line naming the option), 130 on Ctrl-C, 143 on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, Optional, Sequence

__all__ = ["main"]

_EXIT_FAILURE = 1
_EXIT_USAGE = 2
_EXIT_INTERRUPTED = 130
_EXIT_TERMINATED = 128 + signal.SIGTERM
_CTR_FORMATS = ("auto", "criteo", "avazu", "parquet")
_INTERACTION_FORMATS = ("auto", "lightgcn", "movielens")
_PARAMETER_ERROR = re.compile(r"The '(\w+)' parameter of [\w.]+")
_OPTION_OF_PARAMETER = {
    "max_epochs": "--epochs", "n_epochs": "--epochs", "embed_dim": "--embed-dim", "hidden": "--hidden",
    "batch_size": "--batch-size", "learning_rate": "--lr", "lr": "--lr", "min_frequency": "--min-frequency",
    "validation_fraction": "--validation-fraction", "random_state": "--seed", "device": "--device",
    "data_format": "--format", "chunksize": "--chunksize", "n_factors": "--factors", "density": "--density",
    "backbone": "--backbone", "method": "--method", "ratio": "--ratio", "model": "--model",
}

_PICKLE_NOTE = """\
The output is a pickle (load it with pickle.load); it appears only once it is complete (written to a
temporary file beside it, then moved into place), and not at all when the run fails. Load pickles
only from sources you trust: unpickling runs code.

exit status: 0 on success, 1 when the run fails (a missing or unreadable file, a failed fit),
2 for a usage error (one line naming the option), 130 on Ctrl-C, 143 on SIGTERM.
Under torchrun the library spreads the work over the ranks; only rank 0 writes and prints."""

_TRAIN_CTR_DESCRIPTION = """\
Train a click-through-rate model (recsys.CTRClassifier: DNN, DeepFM, DCN or DCN-V2) on click logs
streamed from DATA in chunks, and pickle the fitted estimator.

DATA are files or glob patterns ("day_*.txt", quoted so that the shell leaves them alone): the
Criteo format (label, I1-I13, C1-C26, tab separated), Avazu's CSV, or Parquet files with a "label"
column. A share of the rows (--validation-fraction) is held out for early stopping."""

_TRAIN_CTR_EPILOG = _PICKLE_NOTE + """

examples:
  recsys train-ctr day_0.txt --model deepfm --epochs 3 --out deepfm.pkl
  recsys train-ctr 'criteo/day_*.txt' --model dcnv2 --epochs 1 --hidden 1024 512 --out dcn.pkl
  torchrun --nproc_per_node 4 -m recsys train-ctr 'day_*.txt' --epochs 2 --out deepfm.pkl"""

_TRAIN_DSL_DESCRIPTION = """\
Train a top-k recommender with Dynamic Sparse Learning (recsys.DSLRecommender, Wang et al.,
WSDM 2024) at a fixed share of active embedding weights (--density), and pickle it.

TRAIN_FILE (and --test) hold implicit feedback, read by recsys.interactions and detected (--format
auto) from the file: the LightGCN format ("user item item ..." per line, 0-based integer ids,
separated by spaces; also two-column "user item" pair files), or with read_movielens MovieLens u.data
(tab separated "user item rating timestamp"; also two-column tab-separated pairs), ML-1M ratings.dat
("::" separated) and RecBole .inter files (a header "user_id:token item_id:token ..."). The test
file names users and items by the same ids as the training file."""

_TRAIN_DSL_EPILOG = _PICKLE_NOTE + """

With --test, Recall@20 and NDCG@20 (full ranking, training items masked) go to standard output as
"recall@20 VALUE" and "ndcg@20 VALUE" lines.

examples:
  recsys train-dsl gowalla/train.txt --density 0.2 --backbone lightgcn --epochs 400 \\
      --test gowalla/test.txt --out gowalla.pkl
  recsys train-dsl ml-100k/u.data --density 0.5 --factors 32 --out ml.pkl"""

_COMPRESS_DESCRIPTION = """\
Compress a CTR model pickled by 'recsys train-ctr' with recsys.ctr.compress: Atomic Feature
Mimicking (afm: PCA of each layer's outputs on a calibration sample; Yu et al., KDD 2024) or the
weight-SVD baseline (svd), on the embedding tables and the MLP layers, to --ratio times fewer
parameters.

The calibration sample is the first --sample-rows rows streamed from DATA (read as in 'recsys
train-ctr'); --method svd needs no DATA (and reads none).

The output is a pickled, fitted recsys.CTRClassifier (the one compress returns) around the smaller
torch module: load it and call predict_proba on raw rows as before. Its attribute compression_ records
the method, the rank of each compressed layer, the sizes before and after (params_before,
params_after, bytes_before, bytes_after) and the ratio achieved."""

_COMPRESS_EPILOG = _PICKLE_NOTE + """

examples:
  recsys compress deepfm.pkl day_0.txt --method afm --ratio 4 --out deepfm-small.pkl
  recsys compress deepfm.pkl --method svd --ratio 2 --out deepfm-svd.pkl"""


class _UsageError(Exception):
    """A bad option or argument: one line on standard error, exit status 2."""



class _OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, with usage errors on one line like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


# ------------------------------------------------------------------------------------------------
# Argument types


def _number_type(convert: Callable, what: str, accept: Callable[[Any], bool]) -> Callable[[str], Any]:
    """An argparse ``type``: ``convert(text)``, refused with "must be WHAT" unless ``accept`` holds."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")
        return value

    return parse


_positive_int = _number_type(int, "a positive integer", lambda v: v >= 1)
_positive_real = _number_type(float, "a positive number", lambda v: 0 < v < float("inf"))
_fraction = _number_type(float, "a number in [0, 1)", lambda v: 0 <= v < 1)
_density = _number_type(float, "a number in (0, 1]", lambda v: 0 < v <= 1)
_ratio = _number_type(float, "a number of at least 1", lambda v: 1 <= v < float("inf"))
_seed = _number_type(int, "an integer in [0, 2**32 - 1]", lambda v: 0 <= v < 2**32)


# ------------------------------------------------------------------------------------------------
# The parser


def _add_common(command: argparse.ArgumentParser, seed: bool = True, device: bool = True) -> None:
    command.add_argument("--out", "-o", required=True, metavar="FILE", help="output pickle (required)")
    if seed:
        command.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    if device:
        command.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    command.add_argument("--quiet", "-q", action="store_true", help="no progress bars or summary on stderr")


def _add_ctr_data(command: argparse.ArgumentParser) -> None:
    command.add_argument("--format", dest="data_format", choices=_CTR_FORMATS, default="auto",
                         help="format of DATA (default: auto, from the files)")
    command.add_argument("--chunksize", type=_positive_int, default=100_000,
                         help="rows read at a time (default: 100000)")


def _add_train_ctr(commands: Any) -> None:
    from recsys.ctr.models import MODELS

    command = commands.add_parser(
        "train-ctr", help="train a CTR model (DNN, DeepFM, DCN, DCN-V2) on click logs",
        description=_TRAIN_CTR_DESCRIPTION, epilog=_TRAIN_CTR_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("data", nargs="+", metavar="DATA", help="data files or glob patterns")
    command.add_argument("--model", choices=sorted(MODELS), default="deepfm", help="the model (default: deepfm)")
    command.add_argument("--epochs", type=_positive_int, default=10, help="most epochs (default: 10)")
    command.add_argument("--embed-dim", type=_positive_int, default=16, help="embedding width (default: 16)")
    command.add_argument("--hidden", type=_positive_int, nargs="+", default=[400, 400, 400], metavar="WIDTH",
                         help="MLP hidden widths (default: 400 400 400)")
    command.add_argument("--batch-size", type=_positive_int, default=1024, help="rows per step (default: 1024)")
    command.add_argument("--lr", type=_positive_real, default=1e-3, help="Adam's learning rate (default: 1e-3)")
    _add_ctr_data(command)
    command.add_argument("--min-frequency", type=_positive_int, default=1,
                         help="categories seen fewer times share the out-of-vocabulary bucket (default: 1)")
    command.add_argument("--validation-fraction", type=_fraction, default=0.1,
                         help="share of rows held out for early stopping; 0: none (default: 0.1)")
    _add_common(command)


def _add_train_dsl(commands: Any) -> None:
    command = commands.add_parser(
        "train-dsl", help="train a sparse top-k recommender (DSL on MF or LightGCN)",
        description=_TRAIN_DSL_DESCRIPTION, epilog=_TRAIN_DSL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("train", metavar="TRAIN_FILE", help="training interactions")
    command.add_argument("--density", type=_density, required=True,
                         help="share of active embedding weights, in (0, 1]; 1 trains the dense model (required)")
    command.add_argument("--backbone", choices=("mf", "lightgcn"), default="mf", help="the model (default: mf)")
    command.add_argument("--factors", type=_positive_int, default=64, help="embedding width (default: 64)")
    command.add_argument("--epochs", type=_positive_int, default=30, help="epochs (default: 30)")
    command.add_argument("--batch-size", type=_positive_int, default=2048, help="pairs per step (default: 2048)")
    command.add_argument("--lr", type=_positive_real, default=1e-3, help="Adam's learning rate (default: 1e-3)")
    command.add_argument("--format", dest="data_format", choices=_INTERACTION_FORMATS, default="auto",
                         help="format of TRAIN_FILE and --test (default: auto, from the file)")
    command.add_argument("--test", metavar="TEST_FILE", help="held-out interactions: print Recall@20 and NDCG@20")
    _add_common(command)


def _add_compress(commands: Any) -> None:
    command = commands.add_parser(
        "compress", help="compress a pickled CTR model (AFM or weight SVD)",
        description=_COMPRESS_DESCRIPTION, epilog=_COMPRESS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("model", metavar="MODEL", help="a CTRClassifier pickled by 'recsys train-ctr'")
    command.add_argument("data", nargs="*", metavar="DATA", help="calibration data files or glob patterns")
    command.add_argument("--method", choices=("afm", "svd"), default="afm", help="(default: afm)")
    command.add_argument("--ratio", type=_ratio, required=True,
                         help="total size reduction to reach, params_before / params_after (required)")
    command.add_argument("--sample-rows", type=_positive_int, default=100_000,
                         help="rows of DATA in the calibration sample (default: 100000)")
    _add_ctr_data(command)
    _add_common(command, seed=False, device=False)


def _build_parser() -> argparse.ArgumentParser:
    parser = _OneLineArgumentParser(prog="recsys", description="Recommendation models from the command line.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineArgumentParser)
    commands.required = True
    _add_train_ctr(commands)
    _add_train_dsl(commands)
    _add_compress(commands)
    return parser


# ------------------------------------------------------------------------------------------------
# Ranks, files and output


def _rank() -> int:
    """This process's rank: in the initialised process group, else as ``torchrun`` set it (0 without one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0") or 0)


def _device(text: str) -> Any:
    """``--device`` as a torch device; a bare "cuda" under torchrun is this rank's GPU (``LOCAL_RANK``)."""
    from tensorkit.backend import resolve_device
    from tensorkit.distributed import local_rank_device

    try:
        device = resolve_device(text)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise _UsageError(f"--device {text}: {_first_line(exc)}") from None
    return local_rank_device(device)


def _data_files(patterns: Sequence[str]) -> list:
    """The files DATA names (paths and glob patterns), or a ``FileNotFoundError`` naming the one missing."""
    from recsys.ctr.sources import resolve_paths

    return [str(path) for path in resolve_paths(list(patterns))]


def _checked_output(out: str, inputs: Sequence[str]) -> Path:
    """``--out`` checked writable (a folder that exists, not a folder itself) and not one of the inputs."""
    path = Path(out)
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise _UsageError(f"--out {out}: folder {path.parent} does not exist")
    if target.exists() and not target.is_file():
        raise _UsageError(f"--out {out}: it exists and is not a regular file")
    if target.exists():
        for name in inputs:
            if os.path.exists(name) and os.path.samefile(target, name):
                raise _UsageError(f"--out {out} is the input file {name}; writing it would destroy it")
    return path


def _write_pickle(path: Path, value: Any) -> None:
    """Pickle ``value`` to ``path`` atomically, from rank 0 only."""
    from tensorkit.utils import replaced_atomically

    if _rank() != 0:
        return
    with replaced_atomically(path, suffix=".pkl") as temporary:
        with open(temporary, "wb") as stream:
            pickle.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)


def _say(args: argparse.Namespace, message: str) -> None:
    """A note on standard error from rank 0, unless ``--quiet``."""
    if not args.quiet and _rank() == 0:
        print(f"recsys: {message}", file=sys.stderr)


def _verbose(args: argparse.Namespace) -> int:
    return 0 if args.quiet or _rank() != 0 else 1


# ------------------------------------------------------------------------------------------------
# train-ctr


def _train_ctr(args: argparse.Namespace, device: Any) -> None:
    from recsys import CTRClassifier

    out = _checked_output(args.out, _data_files(args.data))
    classifier = CTRClassifier(
        model=args.model, embed_dim=args.embed_dim, hidden=tuple(args.hidden), batch_size=args.batch_size,
        max_epochs=args.epochs, learning_rate=args.lr, min_frequency=args.min_frequency,
        validation_fraction=args.validation_fraction, random_state=args.seed, device=device,
        verbose=_verbose(args), data_format=args.data_format, chunksize=args.chunksize)
    started = time.perf_counter()
    classifier.fit(list(args.data))
    _write_pickle(out, classifier)
    _say(args, f"trained {args.model}: {_ctr_summary(classifier)} in {time.perf_counter() - started:.2f} s "
               f"(device {device}) -> {args.out}")


def _ctr_summary(classifier: Any) -> str:
    """Rows (where the classifier records them), epochs and the validation AUC of the kept epoch."""
    rows = next((getattr(classifier, name) for name in ("n_rows_seen_", "n_rows_", "n_samples_seen_")
                 if hasattr(classifier, name)), None)
    history = list(getattr(classifier, "history_", []) or [])
    best = getattr(classifier, "best_epoch_", None)
    parts = ([f"{rows} rows"] if rows is not None else []) + [f"{len(history)} epoch(s)"]
    aucs = [(entry.get("epoch"), entry["val_auc"]) for entry in history if entry.get("val_auc") is not None]
    kept = [auc for epoch, auc in aucs if epoch == best]
    if kept:
        parts.append(f"validation AUC {kept[0]:.4f} at the kept epoch {best}")
    elif aucs:
        parts.append(f"best validation AUC {max(auc for _, auc in aucs):.4f}")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------------
# train-dsl


def _interaction_format(path: Path) -> str:
    """"lightgcn" or "movielens" for a file of implicit feedback, from its name and first line."""
    if path.is_dir() or path.suffix.lower() == ".inter" or path.name in ("u.data", "ratings.dat"):
        return "movielens"
    with open(path, "rb") as stream:
        head = stream.read(65_536)
    first = next((line for line in head.splitlines() if line.strip()), b"")
    if b"\t" in first or b"::" in first or any(chr(c).isalpha() for c in first):
        return "movielens"
    return "lightgcn"


def _read_interactions(name: str, data_format: str) -> Any:
    from recsys.interactions import read_lightgcn, read_movielens

    path = Path(name)
    if not path.exists():
        raise FileNotFoundError(f"no interaction file at {name}")
    chosen = _interaction_format(path) if data_format == "auto" else data_format
    return read_lightgcn(path) if chosen == "lightgcn" else read_movielens(path)


def _train_dsl(args: argparse.Namespace, device: Any) -> None:
    from recsys import DSLRecommender

    out = _checked_output(args.out, [args.train] + ([args.test] if args.test else []))
    started = time.perf_counter()
    train = _read_interactions(args.train, args.data_format)
    test = _read_interactions(args.test, args.data_format) if args.test else None
    _say(args, f"read {args.train}: {train.n_users} users, {train.n_items} items, {len(train)} interactions")
    model = DSLRecommender(args.backbone, n_factors=args.factors, density=args.density, n_epochs=args.epochs,
                           batch_size=args.batch_size, lr=args.lr, random_state=args.seed, device=device,
                           verbose=_verbose(args))
    model.fit(train)
    scores = model.evaluate(test, k=(20,)) if test is not None else None
    _write_pickle(out, model)
    if scores is not None and _rank() == 0:
        print(f"recall@20 {scores['recall@20']:.6f}\nndcg@20 {scores['ndcg@20']:.6f}")
    _say(args, f"trained DSL-{args.backbone} (density {args.density:g}, {model.n_active_parameters_} active "
               f"weights) for {args.epochs} epoch(s) in {time.perf_counter() - started:.2f} s (device {device}) "
               f"-> {args.out}")


# ------------------------------------------------------------------------------------------------
# compress


def _load_classifier(name: str) -> Any:
    """The fitted CTRClassifier pickled in ``name``, or an error saying what the file holds instead."""
    from recsys import CTRClassifier

    if not os.path.isfile(name):
        raise FileNotFoundError(f"no model file at {name}")
    with open(name, "rb") as stream:
        try:
            model = pickle.load(stream)
        except Exception as exc:
            raise ValueError(f"{name} is not a pickled model ({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(model, CTRClassifier):
        raise ValueError(f"{name} holds a {type(model).__module__}.{type(model).__name__}, not a "
                         "recsys.CTRClassifier; compress takes the models of 'recsys train-ctr'")
    if not hasattr(model, "model_"):
        raise ValueError(f"{name} holds a CTRClassifier that was never fitted")
    return model


def _compress(args: argparse.Namespace, device: Any) -> None:
    """``recsys compress``; ``device`` is None (the model is compressed on the CPU it was pickled for)."""
    from recsys.ctr import compress
    from recsys.ctr.sources import ChunkSource

    if args.method == "afm" and not args.data:
        raise _UsageError("--method afm needs DATA for its calibration sample (see 'recsys compress --help')")
    out = _checked_output(args.out, [args.model] + (_data_files(args.data) if args.data else []))
    started = time.perf_counter()
    classifier = _load_classifier(args.model)
    sample = None
    if args.method == "afm":   # svd reads the weights alone
        sample, _ = ChunkSource(list(args.data), args.data_format, args.chunksize).first_rows(args.sample_rows)
        _say(args, f"calibration sample: {len(sample)} rows")
    small = compress(classifier, sample, method=args.method, ratio=args.ratio)
    _write_pickle(out, small)
    record = small.compression_
    _say(args, f"compressed {args.model} by {args.method}: {record['params_before']} -> {record['params_after']} "
               f"parameters (ratio {record['ratio']:.2f}) in {time.perf_counter() - started:.2f} s -> {args.out}")


# ------------------------------------------------------------------------------------------------
# The entry point


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _in_command_terms(message: str) -> str:
    """A library's parameter error ("The 'ratio' parameter of compress must be ...") with the
    parameter spelled as the command's option ("--ratio must be ...")."""

    def option(match: re.Match) -> str:
        return _OPTION_OF_PARAMETER.get(match.group(1), match.group(0))

    return _PARAMETER_ERROR.sub(option, message)


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory; try a smaller --batch-size or --sample-rows (or, on a GPU, --device cpu)"
    if isinstance(exc, (_UsageError, ValueError, OSError)):
        return _first_line(exc)
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _exit_status(exc: BaseException) -> int:
    from tensorkit.base import InvalidParameterError

    return _EXIT_USAGE if isinstance(exc, (_UsageError, InvalidParameterError)) else _EXIT_FAILURE


def _report(exc: BaseException, status: int) -> None:
    """The error on one line: from rank 0, and from another rank only for a failure of its own (not a
    usage error, which every rank has, nor another rank's failure, which rank 0 reports)."""
    from tensorkit.distributed import RankFailedError

    rank = _rank()
    if rank == 0:
        print(f"recsys: error: {_in_command_terms(_error_line(exc))}", file=sys.stderr)
    elif status != _EXIT_USAGE and not isinstance(exc, RankFailedError):
        print(f"recsys (rank {rank}): error: {_in_command_terms(_error_line(exc))}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``recsys`` command; returns the exit status.

    0 on success; 1 when the run fails (a missing or unreadable file, a failed fit); 2 for a usage
    error; 130 on Ctrl-C and 143 on SIGTERM. Every error is one line on standard error,
    ``recsys: error: ...``; a failed run writes no output.
    """
    commands = {"train-ctr": _train_ctr, "train-dsl": _train_dsl, "compress": _compress}
    from tensorkit.distributed import launched_process_group
    from tensorkit.utils import Terminated, sigterm_raises

    try:
        with sigterm_raises():
            args = _build_parser().parse_args(argv)
            device = _device(args.device) if hasattr(args, "device") else None
            with launched_process_group(device):
                commands[args.command](args, device)
    except KeyboardInterrupt:
        print("recsys: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
    except Terminated:
        print("recsys: terminated", file=sys.stderr)
        return _EXIT_TERMINATED
    except (Exception, MemoryError) as exc:
        status = _exit_status(exc)
        _report(exc, status)
        return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
