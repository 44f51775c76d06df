"""Symbolic derivations (sympy, offline; not on the runtime path of simulations).

Each script derives, verifies exactly, and prints: ``srflow derive [name]`` (or
``python -m srflow.theory.symbolic.<name>``). A new derivation is a new module here with a ``main()`` that returns
0 when everything verified, listed in ``SCRIPTS``.
"""

from importlib import import_module

SCRIPTS = {
    "scale_invariance": "(a) scale-invariance identities to third order",
    "limit_map": "(b) ∂²Φ[v,v] = -(1/(2λ)) P_T ∇³L[v,v] on a curved Γ",
    "eos_period_two": "(c) GD+WD at EoS: equilibrium norm, amplitude, clock, 4/(4+G)",
    "alp_constants": "(d) per-step drift -(δ²/4)∇_Γ log λ₁: the ALP constants ¼ and ⅛",
    "eos_stability": "(e) stability of the EoS equilibrium: the breathing rate κ and the stability condition",
}


def run(name: str) -> bool:
    """Run one derivation script (prints its results); True when everything verified."""
    if name not in SCRIPTS:
        raise KeyError(f"name: unknown derivation {name!r}; valid are {', '.join(SCRIPTS)}")
    return import_module(f"{__name__}.{name}").main() == 0
