"""The benchmarks: each module named in ``NAMES`` declares a ``BENCHMARK`` spec.

``python -m benchmarks NAME [...] [--quick]`` runs them through :mod:`benchmarks.harness`; see
``benchmarks/README.md`` for the protocol every spec follows.
"""

NAMES = (
    "fastrp_blogcatalog",
    "fastrp_study",
    "fastrp_search",
    "kronecker_sbl",
    "flora_transfer",
    "funbat_real",
    "ctr_compression",
    "mlc_clustering",
    "pamc_clustering",
    "pamc_same_settings",
    "pamc_cora_settings",
    "pamc_more_seeds",
    "pamc_modularity_search",
    "dsl_gowalla",
    "recsys_scale",
    "fastrp_scale",
    "device_check",
)
