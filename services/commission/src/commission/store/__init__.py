"""Commission store (tables prefixed `cm_`), in four parts: `tables` (the SQLModel tables),
`plans` (the rate plan as stored), `repository` (what a consumed batch reads and writes) and
`queries` (reads for the API and operators). The names callers use are re-exported here.

Nothing here commits: the unit of work (a consumed batch, a tick or an HTTP command) owns
the transaction.
"""

from commission.store.plans import (
    Plans,
    StoredPlan,
    add_plan_version,
    copy_plan_versions,
    plan_at,
    plan_versions,
    plans_at,
)
from commission.store.queries import (
    Fact,
    audit_of,
    commissions_of_order,
    completion,
    facts_of,
    inbox_positions,
    latest_paid_at,
    order,
    page_of_commissions,
    totals_by_status,
)
from commission.store.repository import Repository
from commission.store.tables import (
    TABLES,
    AuditRecord,
    CommissionRecord,
    CompletionRecord,
    OrderRecord,
    PlanRateRecord,
    PlanVersionRecord,
    RecruiterRecord,
    RefundLineRecord,
    StatusChangeRecord,
)

__all__ = [
    "TABLES",
    "AuditRecord",
    "CommissionRecord",
    "CompletionRecord",
    "Fact",
    "OrderRecord",
    "PlanRateRecord",
    "PlanVersionRecord",
    "Plans",
    "RecruiterRecord",
    "RefundLineRecord",
    "Repository",
    "StatusChangeRecord",
    "StoredPlan",
    "add_plan_version",
    "audit_of",
    "commissions_of_order",
    "completion",
    "copy_plan_versions",
    "facts_of",
    "inbox_positions",
    "latest_paid_at",
    "order",
    "page_of_commissions",
    "plan_at",
    "plan_versions",
    "plans_at",
    "totals_by_status",
]  # fmt: skip
