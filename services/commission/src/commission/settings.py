"""Configuration of the commission service (`FX_*` environment variables).

Defaults, as docs/domain.md §3 states them:
- `FX_DEFAULT_RATE_BPS` = 1000 (10 %): the rate of plan version 0, used for orders paid
  before any plan version is stored (overrides per category / SKU come with stored versions);
- `FX_SETTLEMENT_HOLD` = 7 days between an order's completion and settlement (an ISO 8601
  duration: `P7D`, `PT12H`);
- `FX_BUSINESS_UTC_OFFSET` = 8 hours: where the merchant's day starts for the summary's
  "today" and "this month" (China Standard Time has no daylight saving);
- `FX_LEADERBOARD_CHECK_S` = 300: how often the `earned` leaderboard is checked against
  the store, and rebuilt when empty or wrong (`commission.board`);
- `FX_COMMISSION_TIERS` = 1: 2 turns the second tier on (docs/domain.md §3.7): an order
  attributed to a recruit also earns their recruiter a tier-2 line;
- `FX_TIER2_DEFAULT_RATE_BPS` = 0: the tier-2 rate of plan version 0 (stored plan versions
  carry their own tier-2 rates);
- HTTP port 8103 (`FX_HTTP_PORT`).

Kept apart from `app.py` so that `api.py` can read it without importing the wiring.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from commission.domain import Terms
from fx_common.settings import MAX_PERIOD, SERVICE_PORTS, ServiceSettings


class CommissionSettings(ServiceSettings):
    service: str = "commission"
    http_port: int = SERVICE_PORTS["commission"]
    default_rate_bps: int = Field(1000, ge=0, le=10_000)
    commission_tiers: int = Field(1, ge=1, le=2)
    tier2_default_rate_bps: int = Field(0, ge=0, le=10_000)
    settlement_hold: timedelta = Field(timedelta(days=7), ge=timedelta(0), le=MAX_PERIOD)
    business_utc_offset: timedelta = Field(
        timedelta(hours=8), ge=timedelta(hours=-12), le=timedelta(hours=14)
    )
    # How often the `earned` leaderboard is checked against the store (rebuilt when empty
    # or wrong): `FX_LEADERBOARD_CHECK_S`.
    leaderboard_check_s: float = Field(300.0, gt=0)

    def terms(self) -> Terms:
        return Terms(
            default_rate_bps=self.default_rate_bps,
            settlement_hold=self.settlement_hold,
            tiers=2 if self.commission_tiers == 2 else 1,
            tier2_default_rate_bps=self.tier2_default_rate_bps,
        )
