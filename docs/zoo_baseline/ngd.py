"""Independent look at a normalized-gd path floor: the same check with Φ computed to a 1000x tighter gradient
tolerance (project_to_manifold grad_rtol 1e-12 instead of 1e-9)."""
import sys, warnings
warnings.simplefilter("ignore")
import srflow.theory.manifold as man
man.project_to_manifold.__defaults__ = (1e-12, 1e6)
import srflow.verification.checks as checks
from srflow.verification.verify import build_model
from srflow.verification.session import Session, QUICK
spec, seed = sys.argv[1], int(sys.argv[2])
m = build_model(spec, seed)
r = checks.CHECKS["normalized-gd"](Session(m, QUICK, seed, spec=spec))
print(r.status, r.message[:700], flush=True)
