"""Editing the rate plan (pure rules, beside `domain.RatePlan`).

A plan version is a snapshot of the whole plan: the default rate and every category and SKU
override. It is never edited. Every edit — the whole plan replaced, or one override added,
changed or removed — creates the next version from the latest one (the one with the highest
number, which may be scheduled to start later than now), copying whatever the edit does not
touch. An edit names the version it was made against; if another edit created a newer version
since, it is refused, so two operators never overwrite each other's change.

Precedence when pricing a line: the SKU's override, else its category's, else the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from commission.domain import Rate, RatePlan

Scope = Literal["sku", "category"]
Tier = Literal[1, 2]


@dataclass(frozen=True)
class OverrideEdit:
    """Set (`rate` given) or remove (`rate` None) one override of a tier's rules."""

    scope: Scope
    key: str
    rate: Rate | None
    tier: Tier = 1


class EditRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def version_refusal(named: int | None, latest: int) -> EditRefused | None:
    """Why an edit made against version `named` may not apply when `latest` is the latest."""
    if named is None:
        return EditRefused(
            428,
            "if_match_required",
            f'name the version you are changing: If-Match: "{latest}" (the latest version)',
        )
    if named != latest:
        return EditRefused(
            412,
            "version_mismatch",
            f"you edited version {named}, but the latest is {latest}: read it again "
            "(GET /v1/plan/versions) and redo your change on it",
        )
    return None


def replaced(
    latest: RatePlan,
    default_rate_bps: int,
    by_category: Mapping[str, Rate],
    by_sku: Mapping[str, Rate],
    tier2: tuple[int, Mapping[str, Rate], Mapping[str, Rate]] = (0, {}, {}),
) -> RatePlan:
    """The next version: exactly the plan given (`tier2`: the default rate, category and SKU
    overrides of the second tier; none given: no tier-2 commission)."""
    return RatePlan(
        version=latest.version + 1,
        default_rate_bps=default_rate_bps,
        by_category=dict(by_category),
        by_sku=dict(by_sku),
        tier2_default_rate_bps=tier2[0],
        tier2_by_category=dict(tier2[1]),
        tier2_by_sku=dict(tier2[2]),
    )


def with_override(latest: RatePlan, edit: OverrideEdit) -> RatePlan:
    """The next version: the latest with one override of one tier set or removed (404 if
    absent)."""
    field = f"{'tier2_' if edit.tier == 2 else ''}by_{edit.scope}"
    current = dict(getattr(latest, field))
    if edit.rate is not None:
        current[edit.key] = edit.rate
    elif edit.key in current:
        del current[edit.key]
    else:
        raise EditRefused(
            404,
            "no_such_override",
            f"version {latest.version} has no {'tier-2 ' if edit.tier == 2 else ''}"
            f"{edit.scope} override for {edit.key!r}",
        )
    changes: dict[str, object] = {"version": latest.version + 1, field: current}
    return replace(latest, **changes)  # type: ignore[arg-type]
