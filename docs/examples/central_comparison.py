"""The central comparison, by hand, on a model of your own.

your model -> θ₀ on Γ -> GD+WD from the EoS start -> Φ(w̄_t) along the run -> the flow ζ at the matched clock
-> the error ‖Φ(w̄_t) - ζ(s(t))‖, for two values of ηλ (it should fall ∝ ηλ) and against the naive clock
s = 2ηλt (which should be far off). docs/theory.md §3 derives the flow dζ/ds = -¼∇_Γ log λ₁ and the clock
2ηλt = s + log(λ₁(ζ(0))/λ₁(ζ(s))).

Run from a checkout with ``PYTHONPATH=. python3 docs/examples/central_comparison.py`` (or after ``pip install .``).
"""

import numpy as np

import srflow.theory as th
from srflow.toy_models import wrap
from srflow.verification.simulate import eos_start, simulate

# 1. Your model: L(w) = f(w/‖w‖) with f(x) = ½(1 + 5x₀²)(x₂² + ½x₃²); its minimizers on the sphere are the great
#    circle x₂ = x₃ = 0, along which λ₁ = 1 + 5x₀² changes, so the flow moves. Exact derivatives of f; ``wrap``
#    applies the chain rule through w/‖w‖.
K = np.array([0.0, 0.0, 1.0, 0.5])
E0 = np.eye(4)[0]


def f(x):
    return 0.5 * (1 + 5 * x[0] ** 2) * np.sum(K * x * x)


def grad(x):
    return 10 * x[0] * (0.5 * np.sum(K * x * x)) * E0 + (1 + 5 * x[0] ** 2) * K * x


def hess(x):
    kx = K * x
    return (5 * np.sum(kx * x) * np.outer(E0, E0) + 10 * x[0] * (np.outer(E0, kx) + np.outer(kx, E0))
            + (1 + 5 * x[0] ** 2) * np.diag(K))


def third(x, a, b):
    kx = K * x
    return (10 * a[0] * b[0] * kx + 10 * E0 * ((kx @ a) * b[0] + (kx @ b) * a[0])
            + 10 * x[0] * (E0 * (a @ (K * b)) + a[0] * K * b + b[0] * K * a))


model = wrap(4, f, grad, hess, third, name="my_circle")

# 2. θ₀ on Γ: here a point of the circle where λ₁ has a slope (Φ of a random start works too:
#    th.project_to_manifold(model, w).theta).
theta0 = np.array([np.cos(0.6), np.sin(0.6), 0.0, 0.0])

# 3. the flow from θ₀, far enough for τ = ηλt ≤ tau_end (s ≤ 2τ, since log λ₁ falls along it)
lr, tau_end = 0.1, 0.06
flow = th.sharpness_reduction_flow(model, theta0, s_end=2 * tau_end + 0.05)

print(f"{'ηλ':>8} {'steps':>6} {'max ‖Φ - ζ(s(t))‖':>18} {'naive clock':>12}")
errors = {}
for eta_lambda in (1e-3, 3e-4):
    wd = eta_lambda / lr
    steps = int(round(tau_end / eta_lambda))
    # 4. GD+WD from the EoS start above θ₀ (‖w₀‖² = ηλ₁/(2(1 - ηλ)), kicked by the predicted amplitude),
    #    recording Φ(w̄_t) (odd stride: the records alternate between the two phases of the period-2 flip)
    w0 = eos_start(model, theta0, lr, wd)
    run = simulate(model, w0, lr, steps, wd=wd, every=(steps // 12) | 1, track_phi=True)
    # 5. the matched clock: the flow time s(t) that the GD+WD clock assigns to each recorded step
    s_matched = th.s_at_steps(flow, th.gdwd_steps(flow, lr, wd), run.steps)
    s_naive = th.s_at_steps(flow, th.naive_gdwd_steps(flow, lr, wd), run.steps)
    # 6. the error along the run
    err = np.linalg.norm(run.phi - flow.at(s_matched), axis=1)
    naive = np.linalg.norm(run.phi - flow.at(s_naive), axis=1)
    errors[eta_lambda] = (err.max(), naive.max())
    print(f"{eta_lambda:>8g} {steps:>6} {err.max():>18.3e} {naive.max():>12.3e}")

# The records as data: Trajectory.to_xarray() and FlowResult.to_xarray()
print(run.to_xarray()[["norm_sq", "phi_lam1"]].to_dataframe().tail(3))
print(flow.to_xarray()[["lam1", "G", "tau"]].to_dataframe().iloc[::50])
(e1, n1), (e2, n2) = errors.values()
print(f"error ratio over a factor {1e-3 / 3e-4:.2f} in ηλ: {e1 / e2:.2f} (O(ηλ): ≈ 3.3); naive / flow at ηλ = 3e-4: "
      f"{n2 / e2:.0f}x")
