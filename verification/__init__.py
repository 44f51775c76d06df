"""Verification: simulate the algorithms, compare with ``theory``, and judge.

* ``simulate.py`` (numpy) and ``compiled.py`` (JAX): the runs, as ``Trajectory`` records.
* ``checks/``: the theorem checks, one file per check, each exporting one ``Check`` record (a new check is one new
  file there plus its tests); ``session.py`` is the frame they run in (start point, flows, shared runs);
  ``tracking.py`` the errors of a run against a flow; ``ladder.py`` the ladder of a small parameter.
* ``verdicts.py``: one verdict rule for every convergence check, ``Status``, and the resolving power δ*;
  ``tolerances.py``: every tolerance, with the error analysis behind it.
* ``identities.py``: the exact scale-invariance identities.
* ``verify.py``, ``report.py``, ``check_figures.py``, ``runner.py``, ``outdir.py``: ``srflow verify``;
  ``sweep*.py``: ``srflow sweep``.
"""

from . import tolerances
from .identities import IDENTITIES, IDENTITY_NAMES, IdentityResult, check_identities, check_minimizer
from .verdicts import Status

__all__ = ["IDENTITIES", "IDENTITY_NAMES", "IdentityResult", "Status", "check_identities", "check_minimizer",
           "tolerances"]
