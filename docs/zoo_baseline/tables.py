import json, sys, re
r = json.load(open(sys.argv[1]))
cond = json.load(open("/tmp/zoo_cond.json")) if len(sys.argv) < 3 else {}
short = {"pass": "pass", "fail": "**FAIL**", "inconclusive": "inconcl.", "assumption-violated": "assum.-viol.", "error": "ERROR"}
models = list(dict.fromkeys(c["model"] for c in r["checks"]))
checks = r["requested_checks"]
by = {(c["model"], c["name"]): c for c in r["checks"]}
print("| # | model | D | dim Γ | λ₁/μ | G | gap |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for i, m in enumerate(r["models"]):
    name = m[4:]
    c = cond.get(name, {})
    f = lambda k, fmt="{:.3g}": fmt.format(c[k]) if k in c and c[k] is not None else "-"
    print(f"| {i} | `{name}` | {f('dim', '{}')} | {f('gamma', '{}')} | {f('lam1_over_mu')} | {f('G')} | {f('gap')} |")
print()
print("| # | " + " | ".join(checks) + " |")
print("| --- |" + " --- |" * len(checks))
for i, m in enumerate(r["models"]):
    name = m[4:]
    print(f"| {i} | " + " | ".join(short.get(by[(name, ch)]["status"], "?") if (name, ch) in by else "not run" for ch in checks) + " |")
print()
for i, m in enumerate(r["models"]):
    name = m[4:]
    for ch in checks:
        c = by.get((name, ch))
        if c and c["status"] != "pass":
            msg = re.sub(r"\s+", " ", c["message"])
            print(f"- [{i}] {ch} ({c['status']}): {msg[:700]}")
