"""``python -m benchmarks [NAME ...] [--all] [--quick] [--resume] [--render] [--out DIR]``."""

import argparse
import sys

from .harness.measure import limit_threads_in_environment

limit_threads_in_environment(1)  # before any spec loads NumPy; a spec asking for more gets it in run()


def main(argv=None) -> int:
    from . import NAMES
    from .harness import load_benchmark, render, run
    from .harness.runner import QUICK_RESULTS, RESULTS, results_path

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Run benchmarks and render reports.")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run, among: {', '.join(NAMES)}")
    parser.add_argument("--all", action="store_true", help="every benchmark")
    parser.add_argument("--quick", action="store_true",
                        help="smoke-test settings (results go to benchmarks/results/quick/ unless --out)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse rows of the existing results whose code digest matches the current code")
    parser.add_argument("--methods", nargs="+", metavar="PATTERN",
                        help="run only the methods whose names match these shell patterns (e.g. 'MF *'); the "
                             "other methods' rows measured by the same code are kept")
    parser.add_argument("--render", action="store_true", help="only render the reports from the existing JSON")
    parser.add_argument("--out", help="folder for the JSON and Markdown results")
    args = parser.parse_args(argv)
    names = list(NAMES) if args.all else args.names
    unknown = [name for name in names if name not in NAMES]
    if not names or unknown:
        parser.error(f"name benchmarks among {', '.join(NAMES)} or pass --all" +
                     (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    out_dir = args.out or (QUICK_RESULTS if args.quick else RESULTS)
    incomplete = []
    for name in names:
        benchmark = load_benchmark(name)
        path = results_path(name, out_dir)
        if not args.render:
            path = run(benchmark, quick=args.quick, out_dir=out_dir, resume=args.resume, methods=args.methods)
        report = render(benchmark, path)
        print(f"wrote {path} and {report}")
        from .harness.runner import read_json

        if any(row.get("status") == "failed" for row in read_json(path)["rows"]):
            incomplete.append(name)
    if incomplete:
        print(f"runs failed in: {', '.join(incomplete)} (see the reports' last section)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
