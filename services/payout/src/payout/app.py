"""Wiring of the payout service: consumes settled/reversed commission, publishes withdrawals."""

from __future__ import annotations

from fx_common.cli import main as run
from fx_common.contracts.topics import COMMISSIONS, PAYOUTS
from fx_common.migrations import History
from fx_common.runtime import ServiceSpec
from payout import store
from payout.api import GATEWAY_KEY, router
from payout.gateway import ManualGateway
from payout.handlers import HANDLERS
from payout.ledger_watch import watch_ledger
from payout.settings import PayoutSettings

HISTORY = History.of("payout", __file__, store.TABLES)

SPEC = ServiceSpec(
    name="payout",
    topics=[COMMISSIONS],
    handlers={},
    on=HANDLERS,
    repository=store.Repository,
    tables=store.TABLES,
    migrations=HISTORY,
    outputs=[PAYOUTS],
    router=router,
    settings_cls=PayoutSettings,
    extra={GATEWAY_KEY: ManualGateway()},
    tasks=[watch_ledger],
)


def main() -> None:
    """`fx-<service>`: serve, or `migrate` its store (`fx_common.cli`)."""
    run(SPEC)
