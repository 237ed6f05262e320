"""Wiring of referral-binding: settings, topics, handlers, tables and routes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from pydantic import Field, field_validator

from fx_common.cli import main as run
from fx_common.composition import build_app, lazy_spec
from fx_common.contracts.topics import (
    ATTRIBUTIONS,
    BINDINGS,
    MALL_ORDERS,
    MALL_SHARES,
    QUALIFICATION,
)
from fx_common.leaderboard_service import feeding, watching
from fx_common.migrations import History
from fx_common.runtime import ServiceSpec
from fx_common.settings import MAX_PERIOD, SERVICE_PORTS, ServiceSettings
from referral_binding import board, domain, handlers, store
from referral_binding.api import router
from referral_binding.binding_modes import BindingMode
from referral_binding.cache import BindingCache
from referral_binding.late_visits import DEFAULT_LATE_VISIT_HORIZON

NAME = "referral-binding"
HISTORY = History.of(NAME, __file__, store.TABLES)


class ReferralBindingSettings(ServiceSettings):
    """`FX_PROTECTION_PERIOD`: seconds (`15552000`) or an ISO 8601 duration (`P180D`)."""

    service: str = NAME
    http_port: int = SERVICE_PORTS[NAME]
    protection_period: timedelta = Field(
        domain.DEFAULT_PROTECTION_PERIOD, gt=timedelta(0), le=MAX_PERIOD
    )
    # How long Redis may serve a customer's current binding (0: no cache). A safety net
    # only: the consume path invalidates on every change (`referral_binding.cache`).
    binding_cache_ttl_s: float = Field(60.0, ge=0)
    # DOMAIN §2 switches: `FX_BIND_CANDIDATES` (an `assessing` sharer binds visitors) and
    # `FX_SELF_ATTRIBUTION` (an eligible buyer's own orders are theirs, basis `self`).
    bind_candidates: bool = True
    self_attribution: bool = True
    # `FX_BINDING_MODE` (docs/domain.md §2.6): `protection` (the seed's), `permanent`,
    # `overwrite`.
    binding_mode: BindingMode = BindingMode.PROTECTION
    # `FX_LATE_VISIT_HORIZON` (24 h; seconds or ISO 8601, 0 turns it off): a visit processed
    # after unattributed orders of its visitor paid less than this after it binds as of its
    # time and attributes them (`referral_binding.late_visits`).
    late_visit_horizon: timedelta = Field(
        DEFAULT_LATE_VISIT_HORIZON, ge=timedelta(0), le=MAX_PERIOD
    )
    # The mall's time zone for the `customers` leaderboard's days, weeks and months (the
    # variable commission and the console read too), and how often that board is checked
    # against the store (`FX_LEADERBOARD_CHECK_S`; rebuilt when empty or wrong).
    business_utc_offset: timedelta = Field(
        timedelta(hours=8), ge=timedelta(hours=-12), le=timedelta(hours=14)
    )
    leaderboard_check_s: float = Field(300.0, gt=0)

    def rules(self) -> domain.Rules:
        return domain.Rules(
            bind_candidates=self.bind_candidates,
            self_attribution=self.self_attribution,
            binding_mode=self.binding_mode,
        )

    @field_validator("protection_period", "late_visit_horizon", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        # pydantic reads a number as seconds but not a numeric string, which is what env gives.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        return value


def spec_for(settings: ReferralBindingSettings) -> ServiceSpec:
    """The service, with the handlers configured by `settings` (tests pass their own)."""
    cache = BindingCache(settings.redis_url, settings.topic_namespace, settings.binding_cache_ttl_s)
    invalidate, sweep = handlers.invalidating(cache)
    customers = board.wiring(settings)
    prepare, on_tick = feeding(customers, invalidate, sweep)
    return ServiceSpec(
        name=NAME,
        topics=(MALL_SHARES, MALL_ORDERS, QUALIFICATION),
        handlers={},
        on=handlers.handlers_for(
            settings.protection_period, settings.rules(), settings.late_visit_horizon
        ),
        repository=store.Repository,
        tables=store.TABLES,
        migrations=HISTORY,
        outputs=(BINDINGS, ATTRIBUTIONS),
        router=router,
        on_tick=on_tick,
        prepare=prepare,
        settings_cls=ReferralBindingSettings,
        extra={"binding_cache": cache, "leaderboard": customers},
        tasks=[watching(customers)],
    )


def build(configured: ReferralBindingSettings | None = None) -> FastAPI:
    """The composition root: the app under `configured` (default: the environment's)."""
    return build_app(spec_for, configured or ReferralBindingSettings())


_spec = lazy_spec(spec_for, ReferralBindingSettings)


def __getattr__(name: str) -> ServiceSpec:
    return _spec(name)  # `SPEC`, built on first use (its Redis client too)


def main() -> None:
    """`fx-<service>`: serve, or `migrate` its store (`fx_common.cli`)."""
    run(spec_for(ReferralBindingSettings()))
