"""HTTP of the team page (团队): a distributor's recruits (sub-distributors), beside the
customer list. Commission serves it because it holds the recruiters (fx.recruiter.recorded),
the recruits' qualification history, their attributed orders and the tier-2 commission."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from commission import domain
from commission.store import team
from fx_common.http import Auth, Runtime, require_reader
from fx_common.http_fields import PathId

team_router = APIRouter(tags=["commission"])


class Tier2Totals(BaseModel):
    """Tier-2 commission this recruit's orders brought the recruiter, fen by state."""

    held: int = Field(description="In escrow while the recruit is assessed.")
    pending: int = Field(description="Awaiting the order's completion.")
    frozen: int = Field(description="In the after-sales hold.")
    settled: int = Field(description="Settled, net of clawbacks.")
    reversed: int = Field(description="Clawed back after settlement.")
    voided: int = Field(description="Cancelled before settlement.")


class TeamMember(BaseModel):
    distributor_id: str = Field(description="The recruit (a sub-distributor).")
    applied_at: datetime = Field(description="When they applied, bound to the recruiter.")
    binding_id: str = Field(description="The binding that made the recruiter theirs.")
    status: domain.QualificationStatus | None = Field(
        description="Their latest qualification status as commission knows it (applied, "
        "assessing, qualified, failed, revoked); null when none has arrived yet."
    )
    orders: int = Field(description="Orders attributed to them (their own promotion orders).")
    tier2: Tier2Totals


class TeamPage(BaseModel):
    """The recruits, latest application first. Tier-2 figures are non-zero only with
    FX_COMMISSION_TIERS=2."""

    items: list[TeamMember]
    page: int
    page_size: int
    total: int = Field(description="Recruits over all pages.")


@team_router.get("/distributors/{distributor_id}/team")
def team_of(
    distributor_id: PathId,
    who: Auth,
    runtime: Runtime,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TeamPage:
    """The distributor's recruits with their status, orders and the tier-2 commission they
    brought (a distributor reads only their own team; ops any)."""
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        recruits, total = team.page_of_recruits(session, distributor_id, page, page_size)
        items = [
            TeamMember(
                distributor_id=r.recruit.distributor_id,
                applied_at=r.recruit.applied_at,
                binding_id=r.recruit.binding_id,
                status=r.status,
                orders=r.orders,
                tier2=Tier2Totals(**r.tier2),
            )
            for r in recruits
        ]
    return TeamPage(items=items, page=page, page_size=page_size, total=total)
