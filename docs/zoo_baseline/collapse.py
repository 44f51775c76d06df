"""Independent look at a scale-collapse verdict: the same check with c = 4 (√c = 2: every scaling exact in float64,
so the two runs must agree bit for bit if L is scale-invariant) and with c = 3."""
import sys, dataclasses, warnings
warnings.simplefilter("ignore")
import srflow.verification.checks as checks
from srflow.verification.verify import build_model
from srflow.verification.session import Session, QUICK
spec, seed = sys.argv[1], int(sys.argv[2])
m = build_model(spec, seed)
for c in (4.0, 3.0, 16.0):
    cfg = dataclasses.replace(QUICK, collapse_factor=c)
    r = checks.CHECKS["scale-collapse"](Session(m, cfg, seed, spec=spec))
    print(f"c={c:g}:", r.status, r.message, {k: r.details.get(k) for k in ("horizon_steps", "twin_max_deviation")}, flush=True)
