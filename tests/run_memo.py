"""Runs shared between the repeated checks of a test module.

A check that is called many times on one session with different *predictions* (the mutation suite, the wrong
predictions of test_checks.py) simulates the same runs each time where the check keeps its runs to itself (the
ALP algorithms and GD without WD: ``checks._alp``, ``checks.no_wd_clock``). The runs do not depend on the
predictions, so ``memoize_simulate`` serves a repeated ``simulate`` call from a memo keyed by every argument
(model object, w0's bytes, η, steps and all keywords but the progress label): a different start, step count,
record cadence or algorithm is a different run and is simulated. Each call returns its own deep copy."""

import copy
import numbers

import numpy as np

#: keywords that do not change the run
IGNORED = ("label", "quiet")


def _key(model, w0, lr, steps, kw):
    items = []
    for name, value in sorted(kw.items()):
        if name in IGNORED:
            continue
        if not isinstance(value, (numbers.Number, str, bool, type(None))):
            return None  # not a plain value: no memo, the run is simulated
        items.append((name, value))
    w0 = np.asarray(w0, dtype=float)
    return id(model), w0.shape, w0.tobytes(), float(lr), int(steps), tuple(items)


def memoize_simulate(monkeypatch, modules) -> dict:
    """Replace ``simulate`` in each of ``modules`` by the memoized one; returns the memo (key -> (model, run))."""
    memo: dict = {}
    for module in modules:
        real = module.simulate

        def simulate(model, w0, lr, steps, _real=real, **kw):
            key = _key(model, w0, lr, steps, kw)
            if key is None:
                return _real(model, w0, lr, steps, **kw)
            if key not in memo:
                memo[key] = (model, _real(model, w0, lr, steps, **kw))  # the model kept alive: its id stays its own
            return copy.deepcopy(memo[key][1])

        monkeypatch.setattr(module, "simulate", simulate)
    return memo
