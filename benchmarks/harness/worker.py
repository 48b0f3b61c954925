"""``python -m benchmarks.harness.worker REQUEST``: one measured call in a fresh process.

REQUEST is the JSON the runner sends (benchmark, method, dataset, split, seed, settings, quick); the
last line printed is the outcome as JSON.
"""

import json
import sys


def main(argv=None) -> int:
    request = json.loads((argv or sys.argv[1:])[0])
    from .measure import limit_threads, limit_threads_in_environment
    from .runner import load_benchmark, measure_call
    from .spec import Unavailable

    benchmark = load_benchmark(request["benchmark"])
    limit_threads_in_environment(benchmark.threads)
    limit_threads(benchmark.threads)
    method = benchmark.method(request["method"])
    dataset = next(d for d in benchmark.dataset_list(request["quick"]) if d.name == request["dataset"])
    try:
        data = dataset.load(request["quick"])
    except Unavailable as reason:
        print(json.dumps({"status": "unavailable", "error": str(reason)}))
        return 0
    outcome = measure_call(method, data, request["split"], request["seed"], request["settings"])
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
