"""The ledger checked inside the running service, for the alert `FxReconciliationMismatch`.

Every `FX_RECONCILE_INTERVAL_S` (300 s; 0 turns it off) the payout service folds its own
ledger and withdrawals (`check_ledger`: well-formed entries, holds settled as their
withdrawal's state says, balances that add up) and exports the number of differences as
`fx_reconciliation_differences{service="payout",check="ledger"}`. The comparison with
fx.commissions.v1 reads the topic from offset 0, so it stays a command
(`fx-payout-reconcile`, also run by `fxctl doctor`).
"""

from __future__ import annotations

import asyncio
import logging

from fx_common.ops_metrics import RECONCILIATION_DIFFERENCES, RECONCILIATION_RUNS
from fx_common.runtime import ServiceRuntime
from payout.reconcile_cli import read_store
from payout.reconciliation import check_ledger

log = logging.getLogger(__name__)
CHECK = "ledger"


def check_once(store_url: str) -> int | None:
    """One check on a snapshot of the store (`read_store`: the ledger and the withdrawals as
    of one moment): exports and returns the number of differences (None: the store failed)."""
    try:
        differences = check_ledger(*read_store(store_url))[1]
    except Exception:
        log.exception("ledger check failed")
        RECONCILIATION_RUNS.labels("payout", CHECK, "error").inc()
        return None
    RECONCILIATION_DIFFERENCES.labels("payout", CHECK).set(len(differences))
    RECONCILIATION_RUNS.labels("payout", CHECK, "differences" if differences else "ok").inc()
    for difference in differences[:20]:
        log.error("ledger reconciliation: %s", difference)
    return len(differences)


async def watch_ledger(runtime: ServiceRuntime) -> None:
    interval = float(getattr(runtime.settings, "reconcile_interval_s", 0))
    if interval <= 0:
        return
    while True:
        await asyncio.to_thread(check_once, runtime.settings.store_url())
        await asyncio.sleep(interval)
