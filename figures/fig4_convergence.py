"""Figure 4, convergence: the flow-tracking error against ηλ on log-log axes with the fitted slope and its
standard error, for the flow and the naive flow (the data of the flow-tracking and naive-flow-rejected checks)."""

from __future__ import annotations

import numpy as np

from ._common import COLUMN

NAME = "fig4_convergence"
SIZE = COLUMN
MODELS = ("sphere_circle", "mf")
FIT_FROM = 1e-4  # the flow errors are fitted on ηλ ≥ FIT_FROM (see _fit)


def compute(quick: bool, seed: int) -> dict:
    from srflow.theory import gdwd_steps, naive_gdwd_steps
    from srflow.toy_models import make_model
    from srflow.verification.tracking import tracking_errors
    from srflow.verification.session import FULL, QUICK, Session

    out = {}
    for k, name in enumerate(MODELS):  # the model and start θ₀ of `srflow verify --models NAME --seed SEED`
        session = Session(make_model(name, rng=seed), QUICK if quick else FULL, seed, spec=name)
        out[f"flow_{k}"], _, _ = tracking_errors(session, gdwd_steps)
        out[f"naive_{k}"], _, _ = tracking_errors(session, naive_gdwd_steps)
        out["ladder"] = np.array(session.config.ladder)
    return out


def _fit(x, y, asymptotic: bool):
    """(slope, standard error, prefactor, mask of the fitted rungs): the flow's error is fitted on the
    asymptotic rungs ηλ ≥ FIT_FROM only (below them the error can reach the floor of the Φ and flow computations
    -- on `mf` it stopped falling between ηλ = 3e-5 and 1e-5 -- which would bend a fit over every rung); the
    naive clock's on every rung."""
    from srflow.verification.session import fit_exponent

    keep = x >= FIT_FROM if asymptotic else np.ones(len(x), bool)
    p, se = fit_exponent(x[keep], y[keep])
    return p, se, float(np.exp(np.mean(np.log(y[keep]) - p * np.log(x[keep])))), keep


def plot(d, fig):
    ax = fig.subplots()
    x = d["ladder"]
    for k, name in enumerate(MODELS):
        for key, style, label in ((f"flow_{k}", "o-", "flow"), (f"naive_{k}", "s--", "naive")):
            y = d[key]
            p, se, c, keep = _fit(x, y, label == "flow")
            line, = ax.loglog(x[keep], y[keep], style[0], ms=3.5, mfc="none" if k else None,
                              label=f"{name}, {label}: slope {p:.2f} ± {se:.2f}")
            ax.loglog(x, c * x**p, style[1:] if label == "naive" else ":", color=line.get_color(), lw=0.7)
            if not keep.all():  # the floor: measured, not fitted
                ax.loglog(x[~keep], y[~keep], "x", ms=4.5, color=line.get_color())
    ax.plot([], [], "kx", ms=4.5, label=f"below ηλ = {FIT_FROM:g}: not fitted")
    ax.set_xlabel("ηλ")
    ax.set_ylabel("max_t ‖Φ(w̄_t) − ζ(s(t))‖")
    ax.set_title("tracking error vs ηλ (fixed horizon in τ)")
    ax.set_ylim(top=1e3)  # room above the data for the legend (at top=3 it hid the naive line of mf)
    ax.legend(fontsize=5.2, loc="upper left", ncol=1, framealpha=0.9)


def caption(d) -> str:
    """Each model's slopes and what they say (``_claims.order`` against the theory's order of flow-tracking,
    ``_claims.flat`` for the naive clock), and the smallest rung's ratio to the fitted line."""
    from srflow.verification.ladder import GDWD_ORDER

    from . import _claims

    x = d["ladder"]
    parts = []
    for k, name in enumerate(MODELS):
        p, se, c, keep = _fit(x, d[f"flow_{k}"], True)
        flow = _claims.order(x[keep], d[f"flow_{k}"][keep], GDWD_ORDER.p, "the flow clock's error")
        naive = _claims.flat(x, d[f"naive_{k}"], "the naive clock's error")
        lo = float(x.min())
        floor = float(d[f"flow_{k}"][np.argmin(x)])
        parts.append(f"{name}: {flow} on ηλ ≥ {FIT_FROM:g}, and is {floor:.2g} at ηλ = {lo:g}, "
                     f"{floor / (c * lo**p):.1f}× the fitted line there; {naive}, at {np.median(d[f'naive_{k}']):.2g}")
    return ("Tracking error over a fixed flow horizon against ηλ, log-log, with least-squares slopes ± one standard "
            f"error: the 4/(4+G) clock's error fitted on the asymptotic rungs (ηλ ≥ {FIT_FROM:g}; dotted line "
            "extended over every rung; the smaller rungs (crosses) are shown, not fitted, with their ratio to the "
            "extended line, a floor showing as a ratio > 1), the naive clock's on every rung. A slope of at least "
            f"{GDWD_ORDER.p:g} − {GDWD_ORDER.margin:g} counts as the theory's order {GDWD_ORDER.p:g}, one below "
            f"{GDWD_ORDER.margin:g} as an error that does not fall (srflow verify's margin): " + "; ".join(parts) + ".")
