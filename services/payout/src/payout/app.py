"""Wiring of the payout service: consumes settled/reversed commission, publishes withdrawals."""

from __future__ import annotations

from fastapi import FastAPI

from fx_common.cli import main as run
from fx_common.composition import build_app, lazy_spec
from fx_common.contracts.topics import COMMISSIONS, PAYOUTS
from fx_common.migrations import History
from fx_common.runtime import ServiceSpec
from payout import store
from payout.api import GATEWAY_KEY, router
from payout.gateway import ManualGateway
from payout.handlers import HANDLERS
from payout.ledger_watch import watch_ledger
from payout.reconcile_cli import audit
from payout.settings import PayoutSettings

__all__ = ["PayoutSettings", "build", "main", "spec_for"]

NAME = "payout"
HISTORY = History.of(NAME, __file__, store.TABLES)


def spec_for(configured: PayoutSettings) -> ServiceSpec:
    """The service's parts, with the manual transfer gateway (ops mark transfers paid)."""
    return ServiceSpec(
        name=NAME,
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
        audit=audit,
    )


def build(configured: PayoutSettings | None = None) -> FastAPI:
    """The composition root: the app under `configured` (default: the environment's)."""
    return build_app(spec_for, configured or PayoutSettings())


_spec = lazy_spec(spec_for, PayoutSettings)


def __getattr__(name: str) -> ServiceSpec:
    return _spec(name)  # `SPEC`, built on first use


def main() -> None:
    """`fx-<service>`: serve, or `migrate` its store (`fx_common.cli`)."""
    run(spec_for(PayoutSettings()))
