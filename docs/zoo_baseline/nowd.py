"""Independent look at a no-wd-clock verdict: the same check on a ladder of ε continued downwards."""
import sys, dataclasses, json, warnings
warnings.simplefilter("ignore")
import srflow.verification.checks as checks
from srflow.verification.verify import build_model
from srflow.verification.session import Session, QUICK
spec, seed = sys.argv[1], int(sys.argv[2])
ladder = tuple(float(x) for x in sys.argv[3].split(","))
m = build_model(spec, seed)
cfg = dataclasses.replace(QUICK, nowd_ladder=ladder)
r = checks.CHECKS["no-wd-clock"](Session(m, cfg, seed, spec=spec))
print(r.status, r.message, flush=True)
d = r.details
print(json.dumps({k: d[k] for k in ("ladder", "s_final", "s_final_predicted") if k in d}))
for k in ("tracking", "rest point"):
    if k in d: print(k, d[k]["errors"], d[k]["local_exponents"])
