"""Wiring of the commission service: settings, topics, handlers, tables, routes."""

from __future__ import annotations

from commission import store
from commission.api import router
from commission.handlers import make_handlers, on_tick
from commission.settings import CommissionSettings
from fx_common.cli import main as run
from fx_common.contracts.topics import ATTRIBUTIONS, COMMISSIONS, QUALIFICATION
from fx_common.migrations import History
from fx_common.runtime import ServiceSpec

__all__ = ["SPEC", "CommissionSettings", "main"]

HISTORY = History.of("commission", __file__, store.TABLES)

SPEC = ServiceSpec(
    name="commission",
    topics=(ATTRIBUTIONS, QUALIFICATION),
    handlers={},
    on=make_handlers(CommissionSettings().terms()),
    repository=store.Repository,
    tables=store.TABLES,
    migrations=HISTORY,
    outputs=(COMMISSIONS,),
    router=router,
    on_tick=on_tick,
    settings_cls=CommissionSettings,
)


def main() -> None:
    """`fx-<service>`: serve, or `migrate` its store (`fx_common.cli`)."""
    run(SPEC)
