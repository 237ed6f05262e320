"""Wiring of the qualification service: what it consumes, stores, publishes and serves.

Settings (`FX_*`, defaults documented there) live in `qualification.settings`, re-exported
here; the app itself is created by `serve`, never at import time.
"""

from __future__ import annotations

from fastapi import FastAPI

from fx_common.cli import main as run
from fx_common.composition import build_app, lazy_spec
from fx_common.contracts.topics import ATTRIBUTIONS, QUALIFICATION, QUALIFICATION_COMMANDS
from fx_common.migrations import History
from fx_common.runtime import ServiceSpec
from qualification import commands, store
from qualification.api import router
from qualification.handlers import HANDLERS, tick_with_grace
from qualification.settings import QualificationSettings
from qualification.store import TABLES

__all__ = ["QualificationSettings", "build", "main", "spec_for"]

NAME = "qualification"
HISTORY = History.of(NAME, __file__, TABLES)


def spec_for(configured: QualificationSettings) -> ServiceSpec:
    """The service's parts, its sweeper under the configured grace."""
    return ServiceSpec(
        name=NAME,
        topics=[ATTRIBUTIONS, QUALIFICATION_COMMANDS],
        handlers={},
        on=(*HANDLERS, commands.HANDLER),
        repository=store.repository,
        tables=TABLES,
        migrations=HISTORY,
        outputs=[QUALIFICATION, QUALIFICATION_COMMANDS],
        router=router,
        on_tick=tick_with_grace(configured.assessment_grace),
        settings_cls=QualificationSettings,
    )


def build(configured: QualificationSettings | None = None) -> FastAPI:
    """The composition root: the app under `configured` (default: the environment's)."""
    return build_app(spec_for, configured or QualificationSettings())


_spec = lazy_spec(spec_for, QualificationSettings)


def __getattr__(name: str) -> ServiceSpec:
    return _spec(name)  # `SPEC`, built on first use


def main() -> None:
    """`fx-<service>`: serve, or `migrate` its store (`fx_common.cli`)."""
    run(spec_for(QualificationSettings()))
