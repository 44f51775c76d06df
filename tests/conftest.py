"""Hypothesis profiles: ``dev`` (fast, random) and ``ci`` (derandomized), chosen by SRFLOW_HYPOTHESIS_PROFILE,
defaulting to ``ci`` when the CI environment variable is set.

One BLAS thread per process (below). Parallel runs (``pytest -n 2``): pytest-xdist with ``--dist loadfile`` (pyproject.toml) runs each module in one
worker, so its module-scoped fixtures are computed once; tests write only below their own ``tmp_path``."""

import os

# One BLAS thread per test process (and in the processes the tests start, which inherit the environment): two
# xdist workers on two cores with OpenBLAS's threads each oversubscribe them, and the matrices are small (eigh of
# 200×200 3.3 ms on one thread, 26 ms on two under load; verification/runner.py BLAS_THREADS, which srflow verify's
# jobs use). Set before numpy is imported, so it holds for numpy's and scipy's OpenBLAS alike.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("dev", max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=10, derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile(os.environ.get("SRFLOW_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))



#: the test modules in order of their cost, costliest first (seconds of each module's tests in a default run with
#: ``-n 2 --durations=0``, a cold srflow cache, measured 2026-12-05 on the idle 2-core machine: compiled 62,
#: mutations 42, figures 36, reliability 35, sweep 31, jax_models 25, runner 23, checks 21, eos_stability 20,
#: device_phi 19, symbolic 19, cluster_flow 16, bn_nets 16, verify_cli 14, sympy_reference 13; every other module < 9).
#: With ``--dist loadfile --no-loadscope-reorder`` (pyproject.toml) pytest-xdist hands the modules out in
#: collection order, so the longest ones start first and the short ones fill in at the end (longest processing
#: time first): no long module is left to start last on one worker while the other idles. A module missing here
#: (new, renamed) only runs after these, in file order.
COSTLIEST_FIRST = ("test_compiled.py", "test_mutations.py", "test_figures.py", "test_reliability.py", "test_sweep.py",
                   "test_jax_models.py", "test_runner.py", "test_checks.py", "test_eos_stability.py",
                   "test_device_phi.py", "test_symbolic.py", "test_cluster_flow.py", "test_bn_nets.py",
                   "test_verify_cli.py", "test_sympy_reference.py")


def pytest_collection_modifyitems(items):
    """Modules in the order of COSTLIEST_FIRST, then the others; each module's tests stay together, in order
    (a stable sort on the module's rank)."""
    rank = {name: i for i, name in enumerate(COSTLIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
