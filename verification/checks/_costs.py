"""The simulations the checks share, as cost entries {run key: (steps, records)} (``Check.cost``)."""

from __future__ import annotations

import srflow.theory as th

from ..session import VerifyConfig


def gdwd_ladder(config: VerifyConfig) -> dict:
    """The GD+WD runs of the ladder (``Session.ladder_runs``), τ_end/ηλ steps each, ``records`` Φ records."""
    steps = [int(round(config.tau_end / eta_lambda)) for eta_lambda in config.ladder]
    return {"gdwd ladder": (sum(steps), len(steps) * (config.records + 1))}


def eos_pairs(config: VerifyConfig) -> dict:
    """The same runs again without Φ, recording λ₁ pairs (``Session.eos_run``)."""
    return {"eos pairs": (gdwd_ladder(config)["gdwd ladder"][0], 0)}


def alp(config: VerifyConfig, name: str) -> dict:
    """A ladder of η for an algorithm on the sphere: τ_end/η² steps each."""
    return {name: (sum(int(config.alp_tau_end / lr**2) for lr in config.alp_ladder),
                   len(config.alp_ladder) * (config.records + 1))}


def entry_steps(config: VerifyConfig) -> int:
    """Steps of the eos-entry run: 1.5× the phase-2 length (``theory.phase2_steps``) at ``entry_eta_lambda``, plus
    500 steps for phase 1."""
    return int(1.5 * th.phase2_steps(config.entry_eta_lambda, config.entry_norm_ratio)) + 500


def entry(config: VerifyConfig) -> dict:
    """The eos-entry run (``entry_steps``)."""
    return {"entry": (entry_steps(config), 0)}
