"""Hypothesis profiles: ``dev`` (fast, random) and ``ci`` (derandomized), chosen by SRFLOW_HYPOTHESIS_PROFILE,
defaulting to ``ci`` when the CI environment variable is set.

Parallel runs (``pytest -n 2``): pytest-xdist with ``--dist loadfile`` (pyproject.toml) runs each module in one
worker, so its module-scoped fixtures are computed once; tests write only below their own ``tmp_path``."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=10, derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile(os.environ.get("SRFLOW_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

