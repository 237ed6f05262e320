"""The console's settings: where the four services answer, and the token settings it shares
with them (`FX_JWT_*`, `FX_ENV`) to check a sign-in before it forwards the token."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from fx_common.settings import ServiceSettings

SERVICES = ("referral-binding", "qualification", "commission", "payout")


class ConsoleSettings(ServiceSettings):
    service: str = "console"
    http_port: int = 8105
    referral_binding_url: str = "http://127.0.0.1:8101"
    qualification_url: str = "http://127.0.0.1:8102"
    commission_url: str = "http://127.0.0.1:8103"
    payout_url: str = "http://127.0.0.1:8104"
    # Keys the CSRF tokens of the forms (HMAC of the session). Unset: a random key per
    # process, so set it when several console replicas serve one site.
    console_csrf_key: str | None = None
    # How long a local sign-in (FX_ENV=dev|test only) lasts.
    console_dev_session_s: int = Field(8 * 3600, ge=60, le=86_400)
    # The mall's time zone for the pages (the same variable commission uses for its days).
    business_utc_offset: timedelta = Field(
        timedelta(hours=8), ge=timedelta(hours=-12), le=timedelta(hours=14)
    )
    # A JSON file of the mall's products for the distributor centre's product pages
    # ([{"sku", "name", "category", "price_fen"}]); unset: the built-in sample tea catalogue.
    console_catalogue: str | None = None

    def service_urls(self) -> dict[str, str]:
        return {
            "referral-binding": self.referral_binding_url,
            "qualification": self.qualification_url,
            "commission": self.commission_url,
            "payout": self.payout_url,
        }
