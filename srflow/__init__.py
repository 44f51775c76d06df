"""srflow: numerical verification of sharpness reduction by normalization layers.

The package is ``srflow``; its parts are ``srflow.toy_models`` (models), ``srflow.theory`` (sharpness, Φ,
flows, predictions), ``srflow.verification`` (simulators, checks, verdicts, runner, sweeps) and
``srflow.figures``; ``srflow.cli`` is the command line (``srflow ...`` or ``python3 -m srflow ...``).

In the repository the four parts are top-level folders beside this one (``pip install .`` maps them under
``srflow`` with setuptools' ``package-dir``). So that a source checkout imports exactly like an installed
copy -- ``python3 -m pytest`` and ``python3 -m srflow`` from the repository root find this folder first --
the checkout's root is added to this package's search path when the parts are not inside it. Nothing is
installed or imported as a top-level ``theory``/``figures``/...: the parts exist only as ``srflow.<part>``.

Where a new piece goes: a model in ``toy_models/`` (a registered factory), a formula in ``theory/`` (a free
function exported by ``theory/__init__.py``), a check as one file in ``verification/checks/``, a figure as one module
in ``figures/``, a subcommand in ``cli.py``; each ``__init__.py`` says how. Names follow the math everywhere:
``lr`` (η), ``wd`` (λ), ``eta_lambda`` (ηλ), ``lam1`` (λ₁), ``theta`` (a point of Γ), ``s``, ``tau``, ``G``
(tests/test_names.py fails on a retired spelling).
"""

import os as _os

__version__ = "0.2.0"

_here = _os.path.dirname(_os.path.abspath(__file__))
if not _os.path.isdir(_os.path.join(_here, "theory")):  # a source checkout: the parts sit beside srflow/
    __path__.append(_os.path.dirname(_here))  # noqa: F821 (a package's __path__)
