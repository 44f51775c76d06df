"""Hypothesis profiles: ``dev`` (fast, random) and ``ci`` (derandomized), chosen by SRFLOW_HYPOTHESIS_PROFILE,
defaulting to ``ci`` when the CI environment variable is set.

Parallel runs (``pytest -n 2``, pytest-xdist with ``--dist loadgroup`` from pyproject.toml): a test that uses a
module- or session-scoped fixture of its own module (an expensive shared setup: the quick figures, a sweep, a
session whose runs many tests reuse) joins that module's ``xdist_group``, so the fixture is computed once, in one
worker, instead of once per worker; every other test goes to whichever worker is free."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=10, derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile(os.environ.get("SRFLOW_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def shares_a_module_fixture(item) -> bool:
    """Whether ``item`` uses a module- or session-scoped fixture defined in its own test module."""
    info = getattr(item, "_fixtureinfo", None)
    module = getattr(item, "module", None)
    if info is None or module is None:
        return False
    for name in info.names_closure:
        for fixturedef in info.name2fixturedefs.get(name, ()):
            if fixturedef.scope in ("module", "session") and getattr(fixturedef.func, "__module__", None) == module.__name__:
                return True
    return False


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("xdist_group") is None and shares_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
