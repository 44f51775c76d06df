"""Independent look at the EoS equilibrium: GD+WD from the EoS start at ηλ, to τ = tau_end; the oscillation amplitude
a² = 2L/(‖w‖²λ₁(w)) (on the unit sphere) against the predicted (ηλ/2)·4/(4+G), per window of τ."""
import sys, warnings, numpy as np
warnings.simplefilter("ignore")
from srflow.verification.verify import build_model
from srflow.verification.session import Session, QUICK
from srflow.verification.simulate import simulate, eos_start
from srflow import theory as th
spec, seed, el, tau_end = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
m = build_model(spec, seed)
s = Session(m, QUICK, seed, spec=spec)
lr = 0.1; wd = el / lr; steps = int(tau_end / el)
mp = th.manifold_point(m, s.theta0)
pred = th.oscillation_amplitude_sq(lr, wd, mp.G)
tr = simulate(m, eos_start(m, s.theta0, lr, wd), lr, steps, wd=wd, every=max(1, steps // 2000) | 1, pairs=False, quiet=True)
tau = tr.steps * el
a2 = 2 * tr.loss / (tr.norm_sq * tr.lam1)
print(f"{spec} ηλ={el:g}: G(θ₀)={mp.G:.3g} predicted a²={pred:.3g}; diverged={tr.diverged}")
for lo in np.arange(0, tau_end, tau_end / 10):
    w = (tau >= lo) & (tau < lo + tau_end / 10)
    print(f"  τ∈[{lo:.2f},{lo + tau_end / 10:.2f}): ⟨a²⟩/pred = {np.mean(a2[w]) / pred:8.3f}  max a²/pred = {np.max(a2[w]) / pred:8.3f}  "
          f"⟨ηλ₁(w)⟩ = {np.mean(lr * tr.lam1[w]):.4f}")
