"""Provenance of a result: the source revision, a hash of the code that computed it, and package versions.

The git revision is taken, in this order, from

1. the **source tree** the packages are imported from, when it is a git checkout (the folder above
   ``verification/`` is the top of a work tree): ``git rev-parse HEAD`` and whether tracked files differ
   from it (``dirty``); ``source = "checkout"``;
2. the **build**: ``pip install .`` runs ``setup.py``'s ``build_py``, which writes the revision of the tree it
   was built from into ``verification/_build_revision.py`` of the installed package (never committed:
   .gitignore); ``source = "build"``;
   An sdist made from a checkout carries that file, so a package built from the sdist keeps the checkout's
   revision (setup.py's ``SdistWithRevision``);
3. otherwise ``"unknown"`` (e.g. built from a copy of the source without git and without the file).

A checkout is preferred because it is live (an editable install keeps editing the tree after its build); a
site-packages folder inside some other repository (a venv in the repo) is not taken for a checkout, since its
parent is not the top of that work tree.

``code_version()`` hashes the source of ``toy_models``, ``theory`` and ``verification`` as imported: it
identifies the code that computes a sweep cell whether or not git is available, and keys the sweep cache.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from pathlib import Path

#: the packages whose source defines the numbers a sweep computes (figures/ and the CLI's plotting do not)
CODE_PACKAGES = ("toy_models", "theory", "verification")

_HERE = Path(__file__).resolve().parent


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def tree_revision(root: Path) -> dict | None:
    """``{"revision", "dirty"}`` of the git work tree whose top is ``root``, or None if ``root`` is not one."""
    top = _git(["rev-parse", "--show-toplevel"], root)
    if top is None or Path(top).resolve() != Path(root).resolve():
        return None
    rev = _git(["rev-parse", "HEAD"], root)
    if rev is None:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], root)
    return {"revision": rev, "dirty": bool(status)}


@functools.lru_cache(maxsize=1)
def source_revision() -> dict:
    """``{"revision": sha or "unknown", "dirty": bool or None, "source": "checkout" | "build" | "unknown"}``
    (see the module docstring for the order)."""
    live = tree_revision(_HERE.parent)
    if live is not None:
        return {**live, "source": "checkout"}
    try:
        from . import _build_revision  # written by setup.py at build time
        return {"revision": _build_revision.REVISION, "dirty": _build_revision.DIRTY, "source": "build"}
    except ImportError:
        return {"revision": "unknown", "dirty": None, "source": "unknown"}


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 (16 hex digits) over the relative paths and contents of every ``.py`` file of CODE_PACKAGES, in
    sorted order: any edit of the code that computes a result changes it."""
    import importlib

    h = hashlib.sha256()
    for name in CODE_PACKAGES:
        root = Path(importlib.import_module(f"srflow.{name}").__file__).resolve().parent
        for path in sorted(p for p in root.rglob("*.py") if p.name != "_build_revision.py"):
            h.update(f"{name}/{path.relative_to(root).as_posix()}\0".encode())
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()[:16]


def package_versions() -> dict:
    """Versions of Python, srflow (installed distribution, or "not installed") and the libraries a sweep uses."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("srflow", "numpy", "scipy", "sympy", "dask", "distributed", "xarray", "h5netcdf", "pandas"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def provenance() -> dict:
    """Revision (with its source and dirty flag), code version and package versions, for attrs and sidecars."""
    rev = source_revision()
    return {"git_revision": rev["revision"], "git_dirty": rev["dirty"], "git_revision_source": rev["source"],
            "code_version": code_version(), "versions": package_versions()}
