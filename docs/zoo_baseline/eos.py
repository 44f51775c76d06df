"""Independent look at an eos-equilibrium verdict: the same check with a longer horizon τ_end (more breathing periods)."""
import sys, dataclasses, json, warnings
warnings.simplefilter("ignore")
import srflow.verification.checks as checks
from srflow.verification.verify import build_model
from srflow.verification.session import Session, QUICK
spec, seed, tau = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ladder = tuple(float(x) for x in sys.argv[4].split(","))
m = build_model(spec, seed)
cfg = dataclasses.replace(QUICK, tau_end=tau, ladder=ladder)
r = checks.CHECKS["eos-equilibrium"](Session(m, cfg, seed, spec=spec))
print(r.status, r.message, flush=True)
d = r.details
for k in ("ladder", "c_observed", "c_predicted", "breathing_periods", "norm_deviation", "amplitude_ratio"):
    print(k, d.get(k))
print("norm_dev/etalam", [nd / x for nd, x in zip(d.get("norm_deviation", []), d.get("ladder", []))])
