"""Configuration of the qualification service (`FX_*` environment variables).

Defaults, as docs/domain.md §1 states them:
- `FX_REQUIRED_ORDERS` = 3 qualifying orders;
- `FX_ASSESSMENT_WINDOW` = 30 days from the contact confirmation (an ISO 8601 duration:
  `P30D`, `PT12H`);
- `FX_ASSESSMENT_COUNTS_OWN_ORDERS` = true (the candidate's own orders count);
- `FX_REAPPLY_COOLDOWN` = 0 (a failed user may apply again at once), counted from the
  deadline the user failed at; same format as the window;
- `FX_DISTRIBUTOR_DISCOUNT_BPS` = 500, i.e. 5 % off a qualified distributor's own purchases.
  docs/domain.md names the setting without a value; 5 % is a modest, common distributor price.
- `FX_WECOM_WEBHOOK_SECRET` unset: the shared secret that signs the WeCom-style
  contact-added callback (see `api.py`); while it is unset the webhook answers 503.
- `FX_QUALIFICATION_MODE` = `assessment` (the seed's way); `everyone` (an application
  qualifies at once) or `appointed` (only ops appoint): modes.py;
- `FX_QUALIFICATION_CONTACT_STEP` = false: in `everyone`, whether an applicant waits for the
  contact confirmation (and qualifies then) instead of qualifying at once;
- HTTP port 8102 (`FX_HTTP_PORT`).

Kept apart from `app.py` so that `api.py` can read it without importing the wiring.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr, field_validator

from fx_common.settings import MAX_PERIOD, SERVICE_PORTS, ServiceSettings
from qualification.domain import Mode, Policy


class QualificationSettings(ServiceSettings):
    service: str = "qualification"
    http_port: int = SERVICE_PORTS["qualification"]
    required_orders: int = Field(3, ge=1)
    assessment_window: timedelta = Field(timedelta(days=30), le=MAX_PERIOD)
    assessment_counts_own_orders: bool = True
    reapply_cooldown: timedelta = Field(timedelta(0), le=MAX_PERIOD)
    # How long after a deadline the sweeper waits before failing a candidate short of the
    # count: an order paid inside the window may still be on its way (consumer lag upstream;
    # e.g. FX_ASSESSMENT_GRACE=PT1H). Default 0: fail as soon as the clock passes the deadline.
    # The failure is still dated at the deadline; orders paid after it never count.
    assessment_grace: timedelta = Field(timedelta(0), le=MAX_PERIOD)
    distributor_discount_bps: int = Field(500, ge=0, le=10_000)
    wecom_webhook_secret: SecretStr | None = None
    qualification_mode: Mode = Mode.ASSESSMENT
    qualification_contact_step: bool = False

    @field_validator("assessment_window")
    @classmethod
    def _window_is_positive(cls, window: timedelta) -> timedelta:
        if window <= timedelta(0):
            raise ValueError("the assessment window must be longer than zero")
        return window

    @field_validator("reapply_cooldown")
    @classmethod
    def _cooldown_is_not_negative(cls, cooldown: timedelta) -> timedelta:
        if cooldown < timedelta(0):
            raise ValueError("the re-application cooldown cannot be negative")
        return cooldown

    def policy(self) -> Policy:
        return Policy(
            required_orders=self.required_orders,
            assessment_window=self.assessment_window,
            counts_own_orders=self.assessment_counts_own_orders,
            reapply_cooldown=self.reapply_cooldown,
            mode=self.qualification_mode,
            contact_step=self.qualification_contact_step,
        )
