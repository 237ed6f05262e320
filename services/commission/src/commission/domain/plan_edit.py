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
from dataclasses import dataclass
from typing import Literal

from commission.domain import Rate, RatePlan

Scope = Literal["sku", "category"]


@dataclass(frozen=True)
class OverrideEdit:
    """Set (`rate` given) or remove (`rate` None) one override."""

    scope: Scope
    key: str
    rate: Rate | None


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
) -> RatePlan:
    """The next version: exactly the plan given."""
    return RatePlan(
        version=latest.version + 1,
        default_rate_bps=default_rate_bps,
        by_category=dict(by_category),
        by_sku=dict(by_sku),
    )


def with_override(latest: RatePlan, edit: OverrideEdit) -> RatePlan:
    """The next version: the latest with one override set or removed (404 if absent)."""
    current = dict(latest.by_sku if edit.scope == "sku" else latest.by_category)
    if edit.rate is not None:
        current[edit.key] = edit.rate
    elif edit.key in current:
        del current[edit.key]
    else:
        raise EditRefused(
            404,
            "no_such_override",
            f"version {latest.version} has no {edit.scope} override for {edit.key!r}",
        )
    return RatePlan(
        version=latest.version + 1,
        default_rate_bps=latest.default_rate_bps,
        by_category=current if edit.scope == "category" else dict(latest.by_category),
        by_sku=current if edit.scope == "sku" else dict(latest.by_sku),
    )
