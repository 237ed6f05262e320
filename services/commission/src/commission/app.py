"""Wiring of the commission service: settings, topics, handlers, tables, routes."""

from __future__ import annotations

from fastapi import FastAPI

from commission import board, store
from commission.api import router
from commission.handlers import make_handlers, on_tick
from commission.settings import CommissionSettings
from fx_common.cli import main as run
from fx_common.composition import build_app, lazy_spec
from fx_common.contracts.topics import ATTRIBUTIONS, COMMISSIONS, QUALIFICATION
from fx_common.leaderboard_service import feeding, watching
from fx_common.migrations import History
from fx_common.runtime import ServiceSpec

__all__ = ["CommissionSettings", "build", "main", "spec_for"]

NAME = "commission"
HISTORY = History.of(NAME, __file__, store.TABLES)


def spec_for(configured: CommissionSettings) -> ServiceSpec:
    """The service's parts, its handlers under the configured terms; the `earned`
    leaderboard fed after each commit (`commission.board`)."""
    earned = board.wiring(configured)
    prepare, tick = feeding(earned, None, on_tick)
    return ServiceSpec(
        name=NAME,
        topics=(ATTRIBUTIONS, QUALIFICATION),
        handlers={},
        on=make_handlers(configured.terms()),
        repository=store.Repository,
        tables=store.TABLES,
        migrations=HISTORY,
        outputs=(COMMISSIONS,),
        router=router,
        on_tick=tick,
        prepare=prepare,
        settings_cls=CommissionSettings,
        replay_seed=store.copy_plan_versions,  # plan versions come over HTTP
        extra={"leaderboard": earned},
        tasks=[watching(earned)],
    )


def build(configured: CommissionSettings | None = None) -> FastAPI:
    """The composition root: the app under `configured` (default: the environment's)."""
    return build_app(spec_for, configured or CommissionSettings())


_spec = lazy_spec(spec_for, CommissionSettings)


def __getattr__(name: str) -> ServiceSpec:
    return _spec(name)  # `SPEC`, built on first use


def main() -> None:
    """`fx-<service>`: serve, or `migrate` its store (`fx_common.cli`)."""
    run(spec_for(CommissionSettings()))
