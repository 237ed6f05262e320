"""The rate plan as stored: versions by start, with their per-SKU and per-category rates."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from commission import domain
from commission.store.tables import TABLES, PlanRateRecord, PlanVersionRecord
from fx_common import db
from fx_common.repository import rows_in, table_of

SCOPES = ("sku", "category", "tier2_sku", "tier2_category")
"""The overrides' scopes as stored (`cm_plan_rate.scope`)."""


def _overrides(plan: domain.RatePlan) -> tuple[Mapping[str, domain.Rate], ...]:
    """The plan's overrides, in the order of `SCOPES`."""
    return (plan.by_sku, plan.by_category, plan.tier2_by_sku, plan.tier2_by_category)


@dataclass(frozen=True)
class Plans:
    """Stored plan versions, read for some moments of payment (see `plans_at`)."""

    starts: list[tuple[datetime, int]]
    """(effective_from, version) of every stored version, in that order."""
    versions: Mapping[int, domain.RatePlan]
    """The versions in force at the moments read, with their overrides."""

    def at(
        self, moment: datetime, default_rate_bps: int, tier2_default_rate_bps: int = 0
    ) -> domain.RatePlan:
        """The version in force at `moment`; version 0 is the configured default rates alone."""
        version = _version_at(self.starts, moment)
        if version is None:
            return domain.RatePlan(
                0, default_rate_bps, tier2_default_rate_bps=tier2_default_rate_bps
            )
        return self.versions[version]


def plans_at(connection: sa.Connection, moments: Iterable[datetime]) -> Plans:
    """Two queries: the versions, then the overrides of those in force at `moments`."""
    versions = table_of(PlanVersionRecord)
    rows = connection.execute(
        sa.select(
            versions.c.effective_from, versions.c.version, versions.c.default_rate_bps,
            versions.c.tier2_default_rate_bps,
        )
    ).all()  # fmt: skip
    starts = sorted((row[0], row[1]) for row in rows)
    in_force = {_version_at(starts, moment) for moment in moments} - {None}
    defaults = {version: (default, tier2) for _, version, default, tier2 in rows}
    return Plans(starts, _with_overrides(connection, defaults, in_force))


def _with_overrides(
    connection: sa.Connection,
    defaults: Mapping[int, tuple[int, int]],
    versions: Iterable[int | None],
) -> dict[int, domain.RatePlan]:
    """The plans of `versions` (their default rates of both tiers given), with their stored
    overrides."""
    by_scope: dict[int, dict[str, dict[str, domain.Rate]]] = {
        version: {scope: {} for scope in SCOPES} for version in versions if version is not None
    }
    rates = table_of(PlanRateRecord)
    for rate in rows_in(connection, sa.select(rates), rates.c.version, by_scope):
        by_scope[rate.version][rate.scope][rate.key] = domain.Rate(rate.rate_bps, rate.fen_per_unit)
    return {
        version: domain.RatePlan(
            version=version,
            default_rate_bps=defaults[version][0],
            by_category=scopes["category"],
            by_sku=scopes["sku"],
            tier2_default_rate_bps=defaults[version][1],
            tier2_by_category=scopes["tier2_category"],
            tier2_by_sku=scopes["tier2_sku"],
        )
        for version, scopes in by_scope.items()
    }


def _version_at(starts: Sequence[tuple[datetime, int]], moment: datetime) -> int | None:
    """The latest start at or before `moment` (the highest version among equal starts)."""
    index = bisect.bisect_right(starts, moment, key=lambda start: start[0])
    return starts[index - 1][1] if index else None


def plan_at(
    session: Session, at: datetime, default_rate_bps: int, tier2_default_rate_bps: int = 0
) -> domain.RatePlan:
    return plans_at(session.connection(), [at]).at(at, default_rate_bps, tier2_default_rate_bps)


@dataclass(frozen=True)
class StoredPlan:
    """A plan version as stored; version 0 (the configured default rate) has no start."""

    plan: domain.RatePlan
    effective_from: datetime | None = None
    created_at: datetime | None = None
    created_by: str | None = None


def plan_versions(
    session: Session, default_rate_bps: int, tier2_default_rate_bps: int = 0
) -> list[StoredPlan]:
    """Every version, version 0 first (the plan is small: a few queries, no paging)."""
    connection = session.connection()
    table = table_of(PlanVersionRecord)
    versions = connection.execute(sa.select(table).order_by(table.c.version)).all()
    defaults = {row.version: (row.default_rate_bps, row.tier2_default_rate_bps) for row in versions}
    plans = _with_overrides(connection, defaults, defaults)
    zero = domain.RatePlan(0, default_rate_bps, tier2_default_rate_bps=tier2_default_rate_bps)
    stored = [StoredPlan(zero)]
    stored += [
        StoredPlan(plans[row.version], row.effective_from, row.created_at, row.created_by)
        for row in versions
    ]
    return stored


def add_plan_version(
    session: Session,
    plan: domain.RatePlan,
    effective_from: datetime,
    *,
    created_at: datetime | None = None,
    created_by: str | None = None,
) -> None:
    session.add(
        PlanVersionRecord(
            version=plan.version,
            default_rate_bps=plan.default_rate_bps,
            tier2_default_rate_bps=plan.tier2_default_rate_bps,
            effective_from=effective_from,
            created_at=created_at,
            created_by=created_by,
        )
    )
    for scope, rates in zip(SCOPES, _overrides(plan), strict=True):
        for key, rate in rates.items():
            session.add(
                PlanRateRecord(
                    version=plan.version,
                    scope=scope,
                    key=key,
                    rate_bps=rate.rate_bps,
                    fen_per_unit=rate.fen_per_unit,
                )
            )


def copy_plan_versions(source: sa.Engine, target: sa.Engine) -> int:
    """Copy the plan versions of a live store into a fresh one (returns how many).

    Plan versions come from HTTP, not from a topic: a replay into a fresh store needs them
    first, or it would price every order at the configured default rate (version 0).
    """
    db.create_schema(target, TABLES)
    tables = [table_of(PlanVersionRecord), table_of(PlanRateRecord)]
    with source.connect() as reading, target.begin() as writing:
        rows = {
            table: [dict(row._mapping) for row in reading.execute(sa.select(table))]
            for table in tables
        }
        for table in tables:
            if rows[table]:
                writing.execute(sa.insert(table), rows[table])
    return len(rows[tables[0]])
