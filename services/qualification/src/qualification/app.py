"""Wiring of the qualification service: what it consumes, stores, publishes and serves.

Settings (`FX_*`, defaults documented there) live in `qualification.settings`, re-exported
here; the app itself is created by `serve`, never at import time.
"""

from __future__ import annotations

from fx_common.cli import main as run
from fx_common.contracts.topics import ATTRIBUTIONS, QUALIFICATION
from fx_common.migrations import History
from fx_common.runtime import ServiceSpec
from qualification import store
from qualification.api import router
from qualification.handlers import HANDLERS, tick_with_grace
from qualification.settings import QualificationSettings
from qualification.store import TABLES

__all__ = ["SPEC", "QualificationSettings", "main"]

HISTORY = History.of("qualification", __file__, TABLES)

SPEC = ServiceSpec(
    name="qualification",
    topics=[ATTRIBUTIONS],
    handlers={},
    on=HANDLERS,
    repository=store.repository,
    tables=TABLES,
    migrations=HISTORY,
    outputs=[QUALIFICATION],
    router=router,
    on_tick=tick_with_grace(QualificationSettings().assessment_grace),
    settings_cls=QualificationSettings,
)


def main() -> None:
    """`fx-<service>`: serve, or `migrate` its store (`fx_common.cli`)."""
    run(SPEC)
