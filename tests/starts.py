"""Start points θ₀ that tests pin because they need a property of that point, not of whatever a seed draws
(``session.start_point`` gives one θ₀ per (model, seed) on every path; seed 0's start on ``sphere_circle`` is
unstable at EoS, κ = +1.01, and its breathing rate is resolved to 10% only)."""

import numpy as np

#: a stable start on sphere_circle's Γ (the circle x₂ = 0, at angle φ): κ(θ₀) = -1.68, c(θ₀) = -4.46, eos-stability
#: resolves κ to 0.2% on the ladder (1e-3, 3e-4, 1e-4) (the start a Session drew before every path used start_point)
STABLE_CIRCLE_PHI = -2.998602700491764


def stable_circle_start() -> np.ndarray:
    """sphere_circle's stable start: (cos φ, sin φ, 0) at φ = STABLE_CIRCLE_PHI."""
    return np.array([np.cos(STABLE_CIRCLE_PHI), np.sin(STABLE_CIRCLE_PHI), 0.0])
