"""Hypothesis profiles of the fuzz suite.

``default`` keeps the whole fuzz suite within about a minute; ``slow`` runs many more
examples: ``TENSORGRAPH_FUZZ_PROFILE=slow make test-fast`` (or ``make fuzz``).
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, derandomize=False, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.data_too_large])
settings.register_profile("default", max_examples=20, **_COMMON)
settings.register_profile("slow", max_examples=500, **_COMMON)
settings.load_profile(os.environ.get("TENSORGRAPH_FUZZ_PROFILE", "default"))
