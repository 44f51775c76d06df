"""Verification: identity checks now; simulators and theorem checks build on them."""

from . import tolerances
from .identities import IDENTITIES, IDENTITY_NAMES, IdentityResult, check_identities, check_minimizer

__all__ = ["IDENTITIES", "IDENTITY_NAMES", "IdentityResult", "check_identities", "check_minimizer", "tolerances"]
