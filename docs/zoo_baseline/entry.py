"""Independent look at an eos-entry verdict: the same run judged with stricter on-Γ markers, and λ₁/μ at Φ."""
import sys, numpy as np, warnings
warnings.simplefilter("ignore")
import srflow.verification.tolerances as tol
import srflow.verification.checks as checks
from srflow.verification.verify import build_model
from srflow.verification.session import Session, QUICK
from srflow.toy_models.zoo import conditioning
from srflow import theory as th
spec, seed = sys.argv[1], int(sys.argv[2])
m = build_model(spec, seed)
for rtol in (1e-6, 1e-8, 1e-10):
    tol.ON_GAMMA_RTOL = rtol
    s = Session(m, QUICK, seed, spec=spec)
    r = checks.CHECKS["eos-entry"](s)
    print(f"ON_GAMMA_RTOL={rtol:g}: {r.status} err={r.observed - r.predicted if r.predicted is not None else None} tol={r.tolerance} | {r.message}", flush=True)
u = Session(m, QUICK, seed, spec=spec).rng("eos-entry").standard_normal(m.dim)
phi = th.project_to_manifold(m, u).theta
print("conditioning at Φ(w0):", {k: round(v, 4) if isinstance(v, float) else v for k, v in conditioning(m, phi).items()})
