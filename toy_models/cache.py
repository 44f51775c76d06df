"""Where srflow caches results on disk: ``cache_dir()``.

The minimizers of the networks (``toy_models.bn_nets``) and the sharpness-reduction flows of matrix-free models
(``verification.flow_cache``) are cached there, each keyed by what determines it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path | None:
    """Where results are cached on disk: $SRFLOW_CACHE_DIR, else ~/.cache/srflow; None disables the cache
    (SRFLOW_CACHE_DIR set to the empty string)."""
    env = os.environ.get("SRFLOW_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    return Path.home() / ".cache" / "srflow"
