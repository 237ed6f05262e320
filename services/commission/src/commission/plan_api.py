"""HTTP of the rate plan: read it (everyone who may price a product), edit it (ops).

Every edit creates the next version (a snapshot of the whole plan; see `plan_edit`) and must
name the version it changes with `If-Match: "<version>"` — the `ETag` of `GET /v1/plan`
and `GET /v1/plan/versions` is the latest version. A stale version answers 412, a missing
`If-Match` 428; neither writes anything. `PUT /v1/plan` replaces the whole plan;
`PUT`/`DELETE /v1/plan/skus/{sku}` and `/v1/plan/categories/{category}` set or remove one
override and keep the rest. `effective_from` (now by default) may not be in the past, before
the latest version's start, or at or before the payment of an order already stored.
Version 0 is the configured default rate (`FX_DEFAULT_RATE_BPS`), in force until version 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from commission import domain, store
from commission.domain import plan_edit
from commission.settings import CommissionSettings
from fx_common.contracts.base import Bps, StrictId
from fx_common.http import ApiError, Auth, MallReader, Ops, Runtime, errors
from fx_common.http_fields import ID_PATTERN, Rfc3339, integer
from fx_common.processing import UnitOfWork
from fx_common.runtime import ServiceRuntime

plan_router = APIRouter(tags=["plan"])

MAX_FEN_PER_UNIT = 1_000_000_000  # ¥10 million per unit: anything above is a typo
UnitFen = integer(0, MAX_FEN_PER_UNIT, "Integer fen, 0 to 10^9.")
PlanKey = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The version this edit changes, as its ETag (`"3"`); required.',
    ),
]
TierParam = Annotated[
    int,
    Query(ge=1, le=2, description="Whose rules: 1, the distributor's (default); 2, the "
          "second tier's (FX_COMMISSION_TIERS=2)."),
]  # fmt: skip
EffectiveFrom = Annotated[
    Rfc3339 | None,
    Query(description="When the new version takes effect: now (the clock port's) by default."),
]
ETAG_HEADER = {"ETag": {"description": 'The latest plan version, e.g. `"3"`: send it back '
                        "as `If-Match` to edit.", "schema": {"type": "string"}}}  # fmt: skip
EDIT_ERRORS = errors(
    409,
    412,
    428,
    s409="`effective_from` is in the past, before the latest version's start, or not after "
    "an order already paid (`invalid_plan`).",
)


def _exactly_one_schema(schema: dict[str, Any]) -> None:
    """The model validator's rule, in the JSON Schema too: one of the two is a number, the
    other null or absent."""
    schema["oneOf"] = [
        {
            "required": [given],
            "properties": {given: {"type": "integer"}, other: {"type": "null"}},
        }
        for given, other in (("rate_bps", "fen_per_unit"), ("fen_per_unit", "rate_bps"))
    ]


class RateRule(BaseModel):
    """An override: a rate in bps of the line's paid amount, or a fixed fen per unit (capped
    at the line's paid amount). Exactly one of the two."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one_schema)
    rate_bps: Bps | None = Field(
        default=None, description="Basis points of the line's paid amount (1000 = 10 %)."
    )
    fen_per_unit: UnitFen | None = Field(  # type: ignore[valid-type]
        default=None, description="Integer fen per unit bought, capped at the line's paid amount."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> RateRule:
        if (self.rate_bps is None) == (self.fen_per_unit is None):
            raise ValueError("give exactly one of rate_bps (0..10000) or fen_per_unit (fen >= 0)")
        return self


def _keys_schema(schema: dict[str, Any]) -> None:
    """pydantic states the keys' pattern as `patternProperties`, which lets keys outside it
    through with any value; say it as `propertyNames` so the schema refuses them, as the
    service does."""
    for name in ("categories", "skus", "tier2_categories", "tier2_skus"):
        field = schema["properties"][name]
        pattern, rule = next(iter(field.pop("patternProperties").items()))
        field["propertyNames"] = {**field.get("propertyNames", {}), "pattern": pattern}
        field["additionalProperties"] = rule


class PlanIn(BaseModel):
    """The whole next plan: what is not listed here has no override in the new version."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_keys_schema)
    default_rate_bps: Bps = Field(description="Rate of lines no override matches, in bps.")
    categories: dict[StrictId, RateRule] = Field(default_factory=dict)
    skus: dict[StrictId, RateRule] = Field(default_factory=dict)
    tier2_default_rate_bps: Bps = Field(
        default=0,
        description="The second tier's rate (FX_COMMISSION_TIERS=2) of lines no tier-2 "
        "override matches, in bps; omitted: 0.",
    )
    tier2_categories: dict[StrictId, RateRule] = Field(default_factory=dict)
    tier2_skus: dict[StrictId, RateRule] = Field(default_factory=dict)
    effective_from: Rfc3339 | None = Field(
        default=None, description="When it takes effect: now (the clock port's) by default."
    )


class PlanOut(BaseModel):
    """One plan version: a snapshot of the whole plan. Precedence: SKU, then category, then
    the default rate."""

    version: int = Field(description="0 is the configured default rate (FX_DEFAULT_RATE_BPS).")
    default_rate_bps: int = Field(description="Rate of lines no override matches, in bps.")
    categories: dict[str, RateRule]
    skus: dict[str, RateRule]
    tier2_default_rate_bps: int = Field(
        description="The second tier's rate of lines no tier-2 override matches, in bps."
    )
    tier2_categories: dict[str, RateRule]
    tier2_skus: dict[str, RateRule]
    effective_from: datetime | None = Field(
        description="When it takes effect; null for version 0 (in force until version 1)."
    )
    created_at: datetime | None
    created_by: str | None = Field(description="The `sub` of the operator who created it.")


class PlanVersions(BaseModel):
    in_force: int = Field(description="The version in force now (by the clock port).")
    latest: int = Field(description="The highest version: what the next edit must name.")
    versions: list[PlanOut] = Field(description="Every version, oldest first.")


def settings_of(runtime: ServiceRuntime) -> CommissionSettings:
    settings = runtime.settings
    if not isinstance(settings, CommissionSettings):
        raise TypeError("the commission runtime needs CommissionSettings")
    return settings


def plan_out(stored: store.StoredPlan) -> PlanOut:
    def rules(rates: Mapping[str, domain.Rate]) -> dict[str, RateRule]:
        return {
            key: RateRule(rate_bps=rate.rate_bps, fen_per_unit=rate.fen_per_unit)
            for key, rate in sorted(rates.items())
        }

    return PlanOut(
        version=stored.plan.version,
        default_rate_bps=stored.plan.default_rate_bps,
        categories=rules(stored.plan.by_category),
        skus=rules(stored.plan.by_sku),
        tier2_default_rate_bps=stored.plan.tier2_default_rate_bps,
        tier2_categories=rules(stored.plan.tier2_by_category),
        tier2_skus=rules(stored.plan.tier2_by_sku),
        effective_from=stored.effective_from,
        created_at=stored.created_at,
        created_by=stored.created_by,
    )


def version0(runtime: ServiceRuntime) -> tuple[int, int]:
    """The configured rates of plan version 0: tier 1's and tier 2's."""
    settings = settings_of(runtime)
    return settings.default_rate_bps, settings.tier2_default_rate_bps


def _versions(runtime: ServiceRuntime) -> tuple[list[store.StoredPlan], store.StoredPlan]:
    """Every plan version, and the one in force now (as an order paid now would use)."""
    with Session(runtime.engine) as session:
        versions = store.plan_versions(session, *version0(runtime))
        in_force = store.plan_at(session, runtime.clock.now(), *version0(runtime)).version
    return versions, next(v for v in versions if v.plan.version == in_force)


def _etag(version: int) -> str:
    return f'"{version}"'


def _named_version(if_match: str | None) -> int | None:
    """The version an `If-Match` names (-1 when it names none we could have issued)."""
    if if_match is None or not if_match.strip():
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    return int(tag) if tag.isascii() and tag.isdigit() and len(tag) < 10 else -1


@plan_router.get("/plan", responses={200: {"headers": ETAG_HEADER}})
def current_plan(who: MallReader, runtime: Runtime, response: Response) -> PlanOut:
    """The plan version in force now (the clock port's now)."""
    versions, in_force = _versions(runtime)
    response.headers["ETag"] = _etag(versions[-1].plan.version)
    return plan_out(in_force)


@plan_router.get("/plan/versions", responses={200: {"headers": ETAG_HEADER}})
def plan_history(who: Auth, runtime: Runtime, response: Response) -> PlanVersions:
    """Every version, oldest first, including those scheduled to take effect later."""
    versions, in_force = _versions(runtime)
    response.headers["ETag"] = _etag(versions[-1].plan.version)
    return PlanVersions(
        in_force=in_force.plan.version,
        latest=versions[-1].plan.version,
        versions=[plan_out(v) for v in versions],
    )


def _create(
    runtime: ServiceRuntime,
    who_sub: str,
    if_match: str | None,
    effective_from: datetime | None,
    build: Callable[[domain.RatePlan], domain.RatePlan],
) -> store.StoredPlan:
    """Create the next version from the latest one, if the edit names it."""
    now = runtime.clock.now()
    starts = (effective_from or now).astimezone(UTC)
    named = _named_version(if_match)

    def create(uow: UnitOfWork) -> store.StoredPlan:
        latest = store.plan_versions(uow.session, *version0(runtime))[-1]
        refusal = plan_edit.version_refusal(named, latest.plan.version)
        if refusal is not None:
            raise refusal
        why = domain.schedule_refusal(
            starts,
            now=now,
            latest_start=latest.effective_from,
            latest_paid_at=store.latest_paid_at(uow.session),
        )
        if why is not None:  # depends on the clock and the stored versions: a conflict
            raise ApiError(409, "invalid_plan", why)
        plan = build(latest.plan)
        if (excess := plan.excess()) is not None:
            raise ApiError(422, "invalid_plan", f"the plan would pay more than a line: {excess}")
        store.add_plan_version(uow.session, plan, starts, created_at=now, created_by=who_sub)
        return store.StoredPlan(plan, starts, now, who_sub)

    try:
        created: store.StoredPlan = runtime.command(f"plan:{now.isoformat()}", create)
    except plan_edit.EditRefused as refused:
        raise ApiError(refused.status, refused.code, refused.message) from refused
    except IntegrityError as exc:
        raise ApiError(
            412,
            "version_mismatch",
            "another edit created the next version at the same time: read the plan again",
        ) from exc
    return created


def _answer(created: store.StoredPlan, response: Response) -> PlanOut:
    response.headers["ETag"] = _etag(created.plan.version)
    return plan_out(created)


def _rate(rule: RateRule) -> domain.Rate:
    return domain.Rate(rule.rate_bps, rule.fen_per_unit)


EDIT: dict[str, Any] = {"responses": {**EDIT_ERRORS, 200: {"headers": ETAG_HEADER}}}


@plan_router.put("/plan", **EDIT)
def edit_plan(
    body: PlanIn, who: Ops, runtime: Runtime, response: Response, if_match: IfMatch = None
) -> PlanOut:
    """Ops: the next version is exactly the plan given (what it omits has no override)."""
    created = _create(
        runtime,
        who.sub,
        if_match,
        body.effective_from,
        lambda latest: plan_edit.replaced(
            latest,
            body.default_rate_bps,
            {k: _rate(r) for k, r in body.categories.items()},
            {k: _rate(r) for k, r in body.skus.items()},
            (
                body.tier2_default_rate_bps,
                {k: _rate(r) for k, r in body.tier2_categories.items()},
                {k: _rate(r) for k, r in body.tier2_skus.items()},
            ),
        ),
    )
    return _answer(created, response)


def _override(
    scope: plan_edit.Scope,
    key: str,
    rule: RateRule | None,
    who_sub: str,
    runtime: ServiceRuntime,
    response: Response,
    if_match: str | None,
    effective_from: datetime | None,
    tier: int,
) -> PlanOut:
    rate = _rate(rule) if rule is not None else None
    edit = plan_edit.OverrideEdit(scope, key, rate, 2 if tier == 2 else 1)
    created = _create(
        runtime,
        who_sub,
        if_match,
        effective_from,
        lambda latest: plan_edit.with_override(latest, edit),
    )
    return _answer(created, response)


@plan_router.put("/plan/skus/{sku}", **EDIT)
def set_sku_override(
    sku: PlanKey,
    body: RateRule,
    who: Ops,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
    effective_from: EffectiveFrom = None,
    tier: TierParam = 1,
) -> PlanOut:
    """Ops: the next version with this SKU's override set; every other rule is kept."""
    return _override("sku", sku, body, who.sub, runtime, response, if_match, effective_from, tier)


@plan_router.delete("/plan/skus/{sku}", responses={**EDIT["responses"], **errors(404)})
def remove_sku_override(
    sku: PlanKey,
    who: Ops,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
    effective_from: EffectiveFrom = None,
    tier: TierParam = 1,
) -> PlanOut:
    """Ops: the next version without this SKU's override (its category or the default
    applies again); every other rule is kept."""
    return _override("sku", sku, None, who.sub, runtime, response, if_match, effective_from, tier)


@plan_router.put("/plan/categories/{category}", **EDIT)
def set_category_override(
    category: PlanKey,
    body: RateRule,
    who: Ops,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
    effective_from: EffectiveFrom = None,
    tier: TierParam = 1,
) -> PlanOut:
    """Ops: the next version with this category's override set; every other rule is kept."""
    return _override(
        "category", category, body, who.sub, runtime, response, if_match, effective_from, tier
    )


@plan_router.delete("/plan/categories/{category}", responses={**EDIT["responses"], **errors(404)})
def remove_category_override(
    category: PlanKey,
    who: Ops,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
    effective_from: EffectiveFrom = None,
    tier: TierParam = 1,
) -> PlanOut:
    """Ops: the next version without this category's override; every other rule is kept."""
    return _override(
        "category", category, None, who.sub, runtime, response, if_match, effective_from, tier
    )
