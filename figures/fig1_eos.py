"""Figure 1, edge of stability: λ₁(∇²L(w_t)) over steps for several η at one ηλ, with the 2/η lines; and
η_eff·λ₁(∇²L(w̄_t)) (η_eff = η/((1-ηλ)‖w_t‖²)) for all runs, which should sit at 2."""

from __future__ import annotations

import numpy as np

from ._common import WIDE

NAME = "fig1_eos"
SIZE = WIDE
LRS = (0.05, 0.1, 0.2)
ETA_LAMBDA = 1e-3


def compute(quick: bool, seed: int) -> dict:
    from srflow.theory import equilibrium_norm_sq, eta_eff_sharpness, project_to_manifold
    from srflow.toy_models import make_model
    from srflow.verification.simulate import simulate

    model = make_model("mf", rng=0)
    u = np.random.default_rng([seed, 1]).standard_normal(model.dim)
    lam1 = float(np.linalg.eigvalsh(model.hess(project_to_manifold(model, u).theta))[-1])
    steps = 1200 if quick else 3000
    out = {"lrs": np.array(LRS), "eta_lambda": ETA_LAMBDA}
    for k, lr in enumerate(LRS):
        # each run starts at 4x its own EoS norm (at λ = 0; the factor 1/(1 - ηλ) is 1.001): by scale invariance,
        # equal ηλ gives the same run in τ
        w0 = u / np.linalg.norm(u) * np.sqrt(4 * equilibrium_norm_sq(lr, 0.0, lam1)) * (1 + 0.3 * k)
        tr = simulate(model, w0, lr, steps, wd=ETA_LAMBDA / lr, every=1, pairs=False)
        out[f"steps_{k}"] = tr.steps
        out[f"sharp_{k}"] = 0.5 * (tr.lam1[:-1] + tr.lam1[1:])  # pairs t, t+1 averaged
        out[f"raw_{k}"] = tr.lam1
        out[f"eff_{k}"] = eta_eff_sharpness(lr, ETA_LAMBDA / lr, tr.lam1)
    return out


STYLES = ("-", "--", ":")


def plot(d, fig):
    ax1, ax2 = fig.subplots(1, 2)
    for k, lr in enumerate(d["lrs"]):
        line, = ax1.semilogy(d[f"steps_{k}"], d[f"raw_{k}"], lw=0.4, alpha=0.8, label=f"λ₁, η = {lr:g}")
        ax1.axhline(2 / lr, color=line.get_color(), ls="--", lw=0.8, label=f"2/η = {2 / lr:g}")
        # the average over the pair (t, t+1) removes the period-2 flip, so that the three runs stay apart
        eff = d[f"eff_{k}"]
        ax2.plot(d[f"steps_{k}"][:-1] * float(d["eta_lambda"]), 0.5 * (eff[:-1] + eff[1:]), ls=STYLES[k % 3], lw=0.9,
                 color=line.get_color(), label=f"η = {lr:g}")
    ax1.set_xlabel("step t")
    ax1.set_ylabel("λ₁(∇²L(w_t))")
    ax1.set_title(f"sharpness vs 2/η, ηλ = {float(d['eta_lambda']):g}")
    ax1.legend(ncol=3, fontsize=5.5, loc="lower right")
    ax2.axhline(2, color="k", lw=0.6, label="2")
    ax2.set_xlabel("τ = ηλt")
    ax2.set_ylabel("η_eff · λ₁(∇²L(w̄_t)), pair average")
    ax2.set_ylim(0, 3)
    ax2.set_title("effective sharpness and its EoS value 2")
    ax2.legend(fontsize=6, loc="lower right")


#: the records at the end of each run over which the caption averages (pairs t, t+1)
TAIL = 400
#: a run "settles at 2" when its pair-averaged η_eff·λ₁ is within this of 2 at every one of the last TAIL steps (not
#: only on average: a run still in its catapults can average 2) and it reached the threshold before that window: 2 + c·ηλ is within 1% here (|c| ≲ 10 at ηλ = 1e-3), the rest is the decaying
#: catapults after the entry, which a run still in them shows as a larger deviation
AT_TWO_RTOL = 0.05


def summary(d) -> list[dict]:
    """Per run: η, the first step at which λ₁(∇²L(w_t)) reaches the threshold 2(1 - ηλ)/η (``theory.eos_threshold``;
    None if it never does), the mean of the pair-averaged η_eff·λ₁ over the last TAIL steps, whether the run
    settled at 2 (reached the threshold before that window, and within AT_TWO_RTOL of 2 at every step of it), the
    tail's range, its peak, and whether λ₁
    rose on the whole from the start to the entry (``_claims.trend``)."""
    from srflow.theory import eos_threshold

    from . import _claims

    out = []
    for k, lr in enumerate(d["lrs"]):
        lr, eta_lambda = float(lr), float(d["eta_lambda"])
        raw, steps, eff = d[f"raw_{k}"], d[f"steps_{k}"], d[f"eff_{k}"]
        over = np.nonzero(raw >= eos_threshold(lr, eta_lambda / lr))[0]
        entry = int(steps[over[0]]) if len(over) else None
        pair = 0.5 * (eff[:-1] + eff[1:])
        tail = float(np.mean(pair[-TAIL:]))
        low, high = float(np.min(pair[-TAIL:])), float(np.max(pair[-TAIL:]))
        start = int(steps[max(0, len(steps) - 1 - TAIL)])
        settled = entry is not None and entry < start and max(abs(low / 2 - 1), abs(high / 2 - 1)) <= AT_TWO_RTOL
        # λ₁ before the entry (the whole run if it never enters): does it rise as the norm shrinks?
        before = slice(0, (over[0] if len(over) else len(raw) - 1) + 1)
        rises = _claims.trend(steps[before], raw[before], "λ₁").holds
        out.append({"lr": lr, "entry": entry, "tail": tail, "low": low, "high": high, "settled": settled, "last": int(steps[-1]), "rises": rises,
                    "peak": float(np.max(pair))})
    return out


def caption(d) -> str:
    """What the panels show, every claim computed from ``d`` (``summary``)."""
    runs = summary(d)
    eta_lambda = float(d["eta_lambda"])
    lrs = ", ".join(f"{r['lr']:g}" for r in runs)
    entries = "; ".join(f"η = {r['lr']:g} at step {r['entry']}" if r["entry"] is not None
                        else f"η = {r['lr']:g} not within its {r['last']} steps" for r in runs)
    settled = [r for r in runs if r["settled"]]
    late = [r for r in runs if not r["settled"]]
    if not late:
        verdict = f"every run settles at 2 (within {AT_TWO_RTOL:.0%} at every one of its last {TAIL} steps)"
    elif not settled:
        verdict = f"no run settles at 2 within {AT_TWO_RTOL:.0%} at every one of its last {TAIL} steps"
    else:
        ok, not_ok = (", ".join(f"{r['lr']:g}" for r in group) for group in (settled, late))
        plural = len(settled) > 1
        verdict = (f"the run{'s' if plural else ''} with η = {ok} settle{'' if plural else 's'} at 2 (within "
                   f"{AT_TWO_RTOL:.0%} at every one of {'their' if plural else 'its'} last {TAIL} steps); "
                   f"η = {not_ok} {'has' if len(late) == 1 else 'have'} not settled by the end of the run")
    flat = [f"{r['lr']:g}" for r in runs if not r["rises"]]
    rise = ("rises before its entry in all runs" if not flat else
            f"does not rise before its entry in the run{'s' if len(flat) > 1 else ''} with η = {', '.join(flat)}")
    why = [f"η = {r['lr']:g} reaches the threshold only at step {r['entry']} of {r['last']}" for r in late
           if r["entry"] is not None and r["entry"] >= r["last"] - TAIL]
    return (f"Edge of stability on `mf` (GD+WD, ηλ = {eta_lambda:g}, η = {lrs}, random starts at 4-6.6× the EoS norm). "
            f"Left: λ₁(∇²L(w_t)) {rise} as weight decay shrinks the norm; it reaches the threshold 2(1-ηλ)/η (dashed, "
            f"same colour): {entries}. Right: η_eff·λ₁(∇²L(w̄_t)) averaged over each pair of steps (t, t+1), one "
            f"line style per η: {verdict}" + (f" ({'; '.join(why)})" if why else "") + ". Its mean over the last "
            f"{TAIL} steps: " + ", ".join(f"{r['tail']:.3f} (range {r['low']:.2f}-{r['high']:.2f})" for r in runs)
            + f" (η = {lrs}); the largest pair "
            f"average along the runs is {max(r['peak'] for r in runs):.2f}.")
