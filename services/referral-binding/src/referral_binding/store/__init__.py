"""Referral-binding store (tables prefixed `rb_`), in three parts: `tables`, `repository`
(what a consumed batch reads and writes) and `queries` (reads for the HTTP API). The names
callers use are re-exported here. No function here commits: the unit of work owns the
transaction.
"""

from referral_binding.store.queries import (
    bound_customer_count,
    customer_history,
    eligibility,
    next_binding_start,
    protected_binding,
    protected_customers,
    visit_stats,
)
from referral_binding.store.repository import Repository
from referral_binding.store.tables import (
    TABLES,
    RbBinding,
    RbEligibility,
    RbExtension,
    RbFollowUp,
    RbOrder,
    RbRecruiter,
    RbShare,
    RbVisit,
)

__all__ = [
    "TABLES",
    "RbBinding",
    "RbEligibility",
    "RbExtension",
    "RbFollowUp",
    "RbOrder",
    "RbRecruiter",
    "RbShare",
    "RbVisit",
    "Repository",
    "bound_customer_count",
    "customer_history",
    "eligibility",
    "next_binding_start",
    "protected_binding",
    "protected_customers",
    "visit_stats",
]  # fmt: skip
