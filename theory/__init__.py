"""Theory as code: sharpness, Γ and the limit map Φ, the sharpness-reduction flow and its clocks, closed forms.

Free functions of ``(model, w, ...)`` for any object following ``toy_models.protocol``.
See docs/theory.md for the derivations.
"""

from .eos import eos_sharpness, eos_sharpness_coefficient
from .flows import (CANONICAL_COEF, FlowResult, gdwd_steps, gdwd_tau, naive_gdwd_steps, normalized_gd_steps, nowd_final,
                    nowd_flow_time, nowd_norm_sq, nowd_stop, s_at_steps, sharpness_reduction_flow, sqrt_gd_steps)
from .manifold import (AssumptionViolated, ManifoldPoint, Projection, gradient_flow_limit, manifold_point,
                       normal_conditioning,
                       project_to_manifold, riemannian_grad_log_sharpness, tangent_space)
from .matrix_free import grad_log_sharpness_matrix_free, project_matrix_free
from .predictions import (alp_flip_step, breathing_period, collapse_factor, eos_entry_step, eos_threshold, equilibrium_norm_sq, nowd_start_norm_sq,
                          oscillation_amplitude_sq, phase2_duration, sqrt_cycle_split)
from .sharpness import (Eigenpairs, check_hyperparameters, effective_lr, is_dense, sharpness,
                        spectral_gap, spherical_sharpness, top_eigenpairs)

__all__ = [
    "top_eigenpairs", "Eigenpairs", "sharpness", "spherical_sharpness", "spectral_gap", "effective_lr",
    "check_hyperparameters", "is_dense", "project_matrix_free", "grad_log_sharpness_matrix_free",
    "project_to_manifold", "Projection", "gradient_flow_limit", "tangent_space", "manifold_point", "ManifoldPoint",
    "riemannian_grad_log_sharpness", "AssumptionViolated", "normal_conditioning",
    "sharpness_reduction_flow", "FlowResult", "gdwd_steps", "gdwd_tau", "naive_gdwd_steps", "nowd_norm_sq",
    "nowd_flow_time", "nowd_stop", "nowd_final", "normalized_gd_steps", "sqrt_gd_steps", "s_at_steps",
    "eos_threshold", "equilibrium_norm_sq", "oscillation_amplitude_sq", "phase2_duration", "eos_entry_step",
    "nowd_start_norm_sq", "alp_flip_step", "breathing_period", "collapse_factor", "eos_sharpness", "eos_sharpness_coefficient",
    "sqrt_cycle_split",
]
