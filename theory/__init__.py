"""Theory as code: sharpness, Γ and the limit map Φ, the sharpness-reduction flow and its clocks, closed forms.

Free functions of ``(model, w, ...)`` for any object following ``toy_models.protocol``; each validates its
arguments (a ValueError or TypeError naming the argument) and states its formula. See docs/theory.md for the
derivations.

* ``sharpness.py``: λ₁ and the top eigenpairs, η_eff, ``check_hyperparameters``, ``is_dense``.
* ``manifold.py``: Φ (``project_to_manifold``), ``manifold_point`` (λ₁, v₁, ∇_Γ log λ₁, G) -- computed by the backend
  ``backend.for_model`` picks: ``dense.py`` (D ≤ DENSE_MAX_DIM) or ``matrix_free.py`` (HVPs only, with ``rkc.py``);
  ``gamma.py`` holds what both share (``AssumptionViolated``, ``Diverged``, the records, the tolerances).
* ``flows.py``: the sharpness-reduction flow and the clocks of each algorithm; ``eos.py``: the EoS sharpness to
  O(ηλ); ``predictions.py``: the closed forms (EoS threshold 2(1 - ηλ)/η and norm, η_eff·λ₁, amplitude, breathing
  period, phase-2 length, ...).
* ``symbolic/``: the sympy derivations behind the constants (offline, ``srflow derive``).

A new formula goes into the module of its kind as a free function with its formula in the docstring, and is
exported below; checks, simulators and figures then call it from here (one source of truth per formula). Arguments
are named after the math: ``lr`` (η), ``wd`` (λ), ``eta_lambda`` (ηλ where it is one quantity), ``lam1`` (λ₁).
"""

from .cluster_flow import ClusterAudit, ClusterPoint, cluster_audit, cluster_point
from .eos import eos_sharpness, eos_sharpness_coefficient, oscillation_curvature
from .stability import (STABILITY_MAX_DIM, EosStability, NowdSlaving, Slaving, breathing_rate, eos_slaving, eos_stability,
                        response_gain,
                        nowd_slaving, nowd_stabilization, SlavedOffset, slaved_offset, stability_coefficients,
                        stability_computable)
from .flows import (CANONICAL_COEF, FlowResult, gdwd_steps, gdwd_tau, naive_gdwd_steps, normalized_gd_steps, nowd_final,
                    nowd_rest_fraction,
                    nowd_flow_time, nowd_norm_sq, nowd_stop, s_at_steps, sharpness_reduction_flow, simple_flow,
                    sqrt_gd_steps)
from .manifold import (AssumptionViolated, ManifoldPoint, Projection, gradient_flow_limit, manifold_point,
                       normal_conditioning,
                       project_to_manifold, riemannian_grad_log_sharpness, tangent_space)
from .matrix_free import grad_log_sharpness_matrix_free, project_matrix_free
from .predictions import (alp_flip_step, breathing_frequency, breathing_period, collapse_factor, eos_entry_step,
                          time_scale_separation,
                          eos_lr_sharpness, eos_threshold, equilibrium_norm_sq, eta_eff_sharpness, nowd_start_norm_sq,
                          norm_decay_rate, oscillation_amplitude_sq, phase2_duration, phase2_steps, sqrt_cycle_split)
from .sharpness import (Eigenpairs, check_hyperparameters, effective_lr, is_dense, sharpness,
                        spectral_gap, spherical_sharpness, top_eigenpairs)

__all__ = [
    "top_eigenpairs", "Eigenpairs", "sharpness", "spherical_sharpness", "spectral_gap", "effective_lr",
    "check_hyperparameters", "is_dense", "project_matrix_free", "grad_log_sharpness_matrix_free",
    "project_to_manifold", "Projection", "gradient_flow_limit", "tangent_space", "manifold_point", "ManifoldPoint",
    "riemannian_grad_log_sharpness", "AssumptionViolated", "normal_conditioning",
    "sharpness_reduction_flow", "FlowResult", "gdwd_steps", "gdwd_tau", "naive_gdwd_steps", "nowd_norm_sq",
    "nowd_flow_time", "nowd_stop", "nowd_final", "nowd_rest_fraction", "nowd_stabilization", "nowd_slaving", "NowdSlaving", "normalized_gd_steps", "sqrt_gd_steps", "s_at_steps",
    "eos_threshold", "equilibrium_norm_sq", "oscillation_amplitude_sq", "norm_decay_rate", "phase2_duration", "eos_entry_step",
    "nowd_start_norm_sq", "alp_flip_step", "breathing_period", "collapse_factor", "eos_sharpness", "eos_sharpness_coefficient", "oscillation_curvature",
    "sqrt_cycle_split", "eos_lr_sharpness", "eta_eff_sharpness", "breathing_frequency", "phase2_steps", "time_scale_separation", "simple_flow", "cluster_point", "ClusterPoint", "cluster_audit", "ClusterAudit",
    "eos_stability", "EosStability", "breathing_rate", "stability_coefficients", "eos_slaving", "Slaving", "response_gain",
    "stability_computable", "STABILITY_MAX_DIM", "slaved_offset", "SlavedOffset",
]
