"""A worked example: one model, one start point θ₀, GD+WD against the sharpness-reduction flow, the figure, and
the verdict -- every step through srflow's public API, in seconds. docs/examples/README.md walks through its output.

1. θ₀. ``srflow verify`` draws the start point on Γ from (model, seed) and saves it beside its report as
   ``theta0-<model>.npy``; ``srflow verify --theta0 FILE.npy`` starts from it again. Here ``srflow verify --models
   sphere_circle --checks identities`` saves it (a rerun of this script reuses the file), and
   ``verify.load_theta0`` reads it back with the checks ``--theta0`` applies: a finite vector of length D that is
   a point of Γ (unit norm, critical, PSD Hessian of the rank Γ needs).
2. The runs. The flow ζ(s) from θ₀, dζ/ds = -¼∇_Γ log λ₁ (docs/theory.md §3), and GD+WD from the EoS start above
   θ₀ at a ladder of ηλ with Φ(w̄_t) recorded along each run: a ``Session`` -- the object whose runs the checks of
   ``srflow verify`` share -- on that θ₀, with a short horizon τ = ηλt ≤ TAU_END.
3. The comparison at the matched clock. Each recorded step t gets the flow time s(t) of the GD+WD clock
   2ηλt = s + log(λ₁(ζ(0))/λ₁(ζ(s))) (``theory.gdwd_steps``); the error is max_t ‖Φ(w̄_t) - ζ(s(t))‖. The naive
   clock s = 2ηλt (``theory.naive_gdwd_steps``) is shown for contrast.
4. The verdict. ``verdicts.judge`` reads the errors of step 3 against the theory's order, O(ηλ)
   (``ladder.GDWD_ORDER``), and the naive clock's errors by the same rule (a wrong prediction, which must fail);
   the flow-tracking check of ``srflow verify`` judges the same runs (path and clock separately) and gives the
   resolving power δ*.
5. The figure: ``OUT/worked_example.png`` (λ₁ along the runs and the flow; the error along the runs; the error
   against ηλ), and the flow-tracking check's own figure, as ``srflow verify`` draws it.

Run from a checkout with ``PYTHONPATH=. python3 docs/examples/worked_example.py [OUT]`` (or after ``pip install
.``); OUT (default ``./worked-example-out``) receives θ₀, the report of step 1 and the figures.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import srflow.theory as th  # noqa: E402
from srflow.cli import main as srflow  # noqa: E402
from srflow.verification.check_figures import plot_check  # noqa: E402
from srflow.verification.checks import CHECKS  # noqa: E402
from srflow.verification.ladder import GDWD_ORDER  # noqa: E402
from srflow.verification.report import headline, theta0_filename  # noqa: E402
from srflow.verification.session import Session, VerifyConfig  # noqa: E402
from srflow.verification.tracking import gdwd_horizon  # noqa: E402
from srflow.verification.verdicts import judge  # noqa: E402
from srflow.verification.verify import build_model, load_theta0  # noqa: E402

MODEL, SEED = "sphere_circle", 0
#: η, and the ladder of ηλ of ``srflow verify --quick``: 4 values over 1.5 decades, the least it accepts for a
#: verdict on an order
LR = 0.1
LADDER = (1e-3, 3e-4, 1e-4, 3e-5)
#: a short horizon in τ = ηλt and few Φ records per run: seconds, not the minutes of ``srflow verify``
TAU_END, RECORDS = 0.1, 9

#: what each verdict tells the reader (README.md, "Reading a verdict")
MEANING = {
    "pass": "the error falls at the order the theory states, so GD+WD follows the flow at the matched clock up to "
            "O(ηλ); a prediction off by a fixed relative amount would leave an error floor and fail",
    "fail": "the error does not fall at the theory's order: the runs contradict the prediction",
    "inconclusive": "these rungs cannot decide yet (not asymptotic); smaller ηλ would",
    "assumption-violated": "a hypothesis of the theorem fails on this run; the prediction was not tested",
}


def start_point(out: Path, model) -> tuple[np.ndarray, Path, str]:
    """θ₀ as ``srflow verify`` saves it (step 1): run it once, then reuse the file; validated as ``--theta0``
    validates it."""
    report = out / "verify"
    path = report / theta0_filename(MODEL)
    how = "reused"
    if not path.exists():
        code = srflow(["verify", "--models", MODEL, "--seed", str(SEED), "--checks", "identities", "--workers", "1",
                       "--quiet", "--out", str(report)])
        if code != 0:
            raise SystemExit(f"srflow verify exited with status {code}; see {report / 'report.md'}")
        how = "saved by srflow verify"
    return load_theta0(path, model, MODEL), path, how


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(MODEL, SEED)

    # 1. one θ₀, saved by srflow verify and validated as --theta0 validates it
    theta0, path, how = start_point(out, model)
    print(f"1. θ₀ of {MODEL} (seed {SEED}, D = {model.dim}): {path} ({how}); start from it again with "
          f"`srflow verify --models {MODEL} --theta0 {path}`")

    # 2. the flow from θ₀ and the GD+WD runs, in a Session on that θ₀ (the runs srflow verify's checks share)
    config = VerifyConfig(lr=LR, ladder=LADDER, tau_end=TAU_END, records=RECORDS)
    session = Session(model, config, SEED, spec=MODEL, theta0=theta0)
    flow = session.flow(gdwd_horizon(session))
    runs = session.ladder_runs()
    print(f"2. the flow from θ₀: λ₁ = {flow.lam1[0]:.4f} at s = 0, {flow.lam1[-1]:.4f} at s = {flow.s[-1]:.3f}; "
          f"GD+WD at η = {LR:g}, {len(LADDER)} values of ηλ from {LADDER[0]:g} to {LADDER[-1]:g}, τ ≤ {TAU_END:g}")

    # 3. Φ(w̄_t) against ζ(s(t)) at the matched clock, and at the naive clock
    print(f"3. {'ηλ':>9} {'steps':>6} {'max ‖Φ − ζ(s(t))‖':>18} {'/ ηλ':>7} {'naive clock':>12}")
    matched, naive, along = [], [], []
    for tr in runs:
        s_t = th.s_at_steps(flow, th.gdwd_steps(flow, tr.lr, tr.wd), tr.steps)
        s_naive = th.s_at_steps(flow, th.naive_gdwd_steps(flow, tr.lr, tr.wd), tr.steps)
        err = np.linalg.norm(tr.phi - flow.at(s_t), axis=1)
        matched.append(err.max())
        naive.append(np.linalg.norm(tr.phi - flow.at(s_naive), axis=1).max())
        along.append((tr.tau, err, s_t))
        print(f"   {tr.eta_lambda:>9g} {int(tr.steps[-1]):>6} {matched[-1]:>18.3e} {matched[-1] / tr.eta_lambda:>7.3f} "
              f"{naive[-1]:>12.3e}")

    # 4. the verdict: verdicts.judge on these errors, and the flow-tracking check on the same runs
    verdict = judge(LADDER, matched, GDWD_ORDER)
    print(f"4. local exponents of the error: {', '.join(f'{q:.2f}' for q in verdict.local)}; fitted order "
          f"{verdict.order:.2f} ± {verdict.order_se:.2f} on the last 3 rungs (theory: {GDWD_ORDER.p:g}, accepted "
          f"≥ {GDWD_ORDER.p - GDWD_ORDER.margin:g})")
    print(f"   verdict on ‖Φ − ζ(s(t))‖: {verdict.status} -- {MEANING[verdict.status]}.")
    wrong = judge(LADDER, naive, GDWD_ORDER)
    print(f"   the naive clock's error, judged by the same rule: {wrong.status} -- {MEANING[wrong.status]} (local "
          f"exponents {', '.join(f'{q:.2f}' for q in wrong.local)})")
    res = CHECKS["flow-tracking"].run(session)
    print(f"   {headline(res).replace('**', '')}")
    for part, what in (("path", "Φ(w̄_t) against ζ at the run's own clock s_t"), ("clock", "|s_t − s(t)|")):
        v = res.details[part]
        print(f"   flow-tracking, {part} ({what}): {v['errors'][-1]:.2e} at ηλ = {v['ladder'][-1]:g}, ∝ "
              f"ηλ^{v['order']:.2f} ± {v['order_se']:.2f}: {v['status']}")
    print(f"   flow-tracking: {res.status}; δ* of the clock rate {res.resolving_power['clock rate']:.2g}, of the flow "
          f"coefficient {res.resolving_power['flow coefficient']:.2g} (a clock or coefficient off by more is "
          f"rejected by these runs)")
    combined = res.details["combined_errors"][:len(matched)]  # (a check adds rungs below a ladder not yet asymptotic)
    same = np.allclose(combined, matched, rtol=1e-12, atol=0)
    print(f"   the check's combined error is the error of step 3: {same}")

    # 5. the figures
    figure = out / "worked_example.png"
    draw(flow, runs, along, matched, naive, verdict).savefig(figure, dpi=130, metadata={"Software": None})
    check_figure = out / plot_check(res, out / "check")  # the path relative to ``out``, as in a report folder
    print(f"5. figures: {figure}, {check_figure}")
    print(f"error ∝ ηλ^{verdict.order:.3f} · verdict {verdict.status} · flow-tracking {res.status} · naive / matched "
          f"at ηλ = {LADDER[-1]:g}: {naive[-1] / matched[-1]:.0f}x")


def draw(flow, runs, along, matched, naive, verdict):
    """(a) λ₁(Φ(w̄_t)) along each run, and λ₁(ζ) of the flow on the GD+WD clock and on the naive clock, against τ;
    (b) the error ‖Φ(w̄_t) − ζ(s(t))‖ along each run over ηλ: one band for every ηλ is an error O(ηλ); (c) the
    largest error against ηλ, with the theory's slope through the smallest rung, and the naive clock's."""
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.8))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(runs)))
    ax = axes[0]
    eta_lambda = runs[-1].eta_lambda  # τ(s) of either clock is the same at every ηλ
    tau_gdwd = th.gdwd_steps(flow, LR, eta_lambda / LR) * eta_lambda
    tau_naive = th.naive_gdwd_steps(flow, LR, eta_lambda / LR) * eta_lambda
    ax.plot(tau_gdwd, flow.lam1, "k-", lw=1.2, label="flow, GD+WD clock")
    ax.plot(tau_naive, flow.lam1, "k--", lw=1.0, label="flow, naive clock s = 2τ")
    for i, (tr, c) in enumerate(zip(runs, colors)):  # concentric rings: the runs lie on top of each other
        ax.plot(tr.tau, tr.phi_lam1, "o", ms=11 - 2.5 * i, mfc="none" if i < len(runs) - 1 else c, mec=c, mew=1.3,
                label=f"GD+WD, ηλ = {tr.eta_lambda:g}")
    low, high = flow.lam1[tau_naive <= TAU_END].min(), flow.lam1[0]
    ax.set(xlim=(0, TAU_END), ylim=(low - 0.05 * (high - low), high + 0.05 * (high - low)), xlabel="τ = ηλt",
           ylabel="λ₁ of Φ(w̄_t) (rings), of ζ (lines)", title="GD+WD follows the flow")
    ax.legend(fontsize=7, frameon=False)
    ax = axes[1]
    for (tau, err, _), tr, c in zip(along, runs, colors):
        ax.plot(tau, err / tr.eta_lambda, "o-", ms=3, color=c, label=f"ηλ = {tr.eta_lambda:g}")
    ax.set(xlabel="τ = ηλt", ylabel="‖Φ(w̄_t) − ζ(s(t))‖ / ηλ", title="error over ηλ: one band, O(ηλ)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, frameon=False)
    ax = axes[2]
    ladder = np.array([tr.eta_lambda for tr in runs])
    ax.loglog(ladder, matched, "o-", color="C0", label="matched clock (GD+WD)")
    ax.loglog(ladder, naive, "s--", color="C3", label="naive clock s = 2ηλt")
    ax.loglog(ladder, verdict.constant * ladder ** GDWD_ORDER.p, ":", color="gray", lw=2,
              label="the theory's order, ∝ ηλ")
    ax.set(xlabel="ηλ", ylabel="max_t ‖Φ(w̄_t) − ζ(s(t))‖",
           title=f"∝ ηλ^{verdict.order:.2f} (theory: {GDWD_ORDER.p:g}): {verdict.status}")
    ax.legend(fontsize=7, frameon=False, loc="center right")
    fig.tight_layout()
    for letter, ax in zip("abc", axes):
        ax.text(-0.14, 1.04, letter, transform=ax.transAxes, fontsize=13, fontweight="bold", va="bottom")
    return fig


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("worked-example-out"))
