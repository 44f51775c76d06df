"""A tiny sweep on a LocalCluster, loaded into pandas.

One model × 2 seeds × 5 values of ηλ over 1.5 decades (the least ladder a verdict on an exponent accepts) of
flow-tracking cells (quick configuration, short horizon): the same as ``srflow sweep tiny.toml --out OUT --cache
CACHE`` with the spec below, then ``xarray.open_dataset`` on ``OUT/sweep.nc``, a pivot in pandas, and the exponent
of each error: path, clock and tracking errors fall ∝ ηλ (theory: O(ηλ)) on the smaller rungs, while at the
largest (4e-3) the clock error is not yet asymptotic. Rerunning it reads every cell from the cache.

Run from a checkout with ``PYTHONPATH=. python3 docs/examples/sweep_to_pandas.py [FOLDER]`` (or after
``pip install .``); FOLDER (default: a temporary folder) receives the spec, the cache and the outputs.
"""

import sys
import tempfile
from pathlib import Path

import xarray as xr

from srflow.verification.sweep import load_spec, run_sweep
from srflow.verification.verdicts import fit_exponent

SPEC = """\
models = ["sphere_circle"]
seeds = [0, 1]
eta_lambda = [4e-3, 1e-3, 5e-4, 2.5e-4, 1.25e-4]

[config]
base = "quick"
tau_end = 0.04
records = 9
"""


def main(folder: Path) -> None:
    (folder / "tiny.toml").write_text(SPEC)
    spec = load_spec(folder / "tiny.toml")
    run_sweep(spec, folder / "out", folder / "cache", quiet=True)

    ds = xr.open_dataset(folder / "out" / "sweep.nc")
    print(f"git revision {ds.attrs['git_revision'][:12]} ({ds.attrs['git_revision_source']}), "
          f"code {ds.attrs['code_version']}, command: {ds.attrs['command']}")
    # one row per cell: the tracking errors and the EoS value of η_eff·λ₁ (prediction: 2)
    cells = ds[["path_error", "clock_error", "tracking_error", "naive_clock_error", "eta_eff_lam1_mean"]].to_dataframe()
    print(cells)
    # the pivot a user makes by hand: tracking error by ηλ (rows) and seed (columns)
    print(cells["tracking_error"].unstack("seed"))
    # the records along each run: τ and the error at the matched clock, as a long table
    along = ds["tracking_error_t"].to_dataframe().dropna().reset_index()
    print(along.groupby(["seed", "eta_lambda"])["tracking_error_t"].max())
    # the verdict on the ladder, per (model, seed): does the error fall ∝ ηλ?
    print(ds[["path_verdict", "path_order", "clock_verdict", "clock_order"]].to_dataframe())
    # the exponent p of error ∝ (ηλ)^p on the last 3 rungs, for each error (theory: 1), and on the first 2
    x = ds.eta_lambda.values
    for seed in ds.seed.values:
        for name in ("path_error", "clock_error", "tracking_error"):
            e = ds[name].sel(model="sphere_circle", seed=seed).values
            p, se = fit_exponent(x[-3:], e[-3:])
            first, _ = fit_exponent(x[:2], e[:2])
            print(f"seed {seed} {name}: ∝ ηλ^{p:.3f} ± {se:.3f} on ηλ ≤ {x[-3]:g} (slope {first:.2f} between "
                  f"{x[0]:g} and {x[1]:g})")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
