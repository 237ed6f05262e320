"""Settings from the environment: `FX_*`, plus the conventional unprefixed names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_PERIOD = timedelta(days=36_500)
"""The longest configurable period (protection, hold, window…): under 100 years, so a time
the contract accepts (before 2100) plus a period stays representable (`contracts.base`)."""

DEV_JWT_SECRET = "dev-only-secret-change-me-in-production"

SERVICE_PORTS = {
    "referral-binding": 8101,
    "qualification": 8102,
    "commission": 8103,
    "payout": 8104,
}
"""The one table of the services' default HTTP ports (`FX_HTTP_PORT` overrides)."""


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FX_", extra="ignore")

    service: str = "fx"
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "FX_KAFKA_BOOTSTRAP_SERVERS"),
    )
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("DATABASE_URL", "FX_DATABASE_URL")
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "FX_REDIS_URL")
    )
    var_dir: Path = Path("var")
    # `auto`: upgrade the store to the code's revision at start (local runs, demo, tests).
    # Otherwise a store behind the code is refused: `fx-<service> migrate` upgrades it.
    migrate: Literal["off", "auto"] = "off"
    # Prefix for every topic and consumer group. Empty in production (the contract names);
    # lets tests, benchmarks and demos run isolated clusters on one broker.
    topic_namespace: str = ""
    # A replay rebuilds a store from offset 0: its own group, and its outbox kept unpublished
    # so it can be compared with the live one (FX_CONSUMER_GROUP=…, FX_PUBLISH=false).
    consumer_group: str | None = None
    publish: bool = True
    clock: Literal["system", "simulated"] = "system"
    clock_start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    # Where the service runs: `dev` and `test` allow a short or the built-in HS256 secret;
    # anything else (the default, `production`) refuses them at startup.
    env: str = "production"
    jwt_secret: str = DEV_JWT_SECRET
    # Asymmetric tokens (RS256/ES256): a JWKS file path or http(s) URL. When set, only tokens
    # signed by one of its keys (chosen by `kid`) are accepted, and HS256 is off.
    jwt_jwks: str | None = None
    jwt_jwks_refresh_s: float = Field(300.0, gt=0)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_s: float = Field(30.0, ge=0, le=300)
    # Larger request bodies are refused with 413 before any JSON parsing.
    http_max_body_bytes: int = Field(262_144, ge=1024)
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    topic_partitions: int = Field(3, ge=1)
    kafka_session_timeout_ms: int = Field(10_000, ge=6_000)
    batch_max_records: int = Field(500, ge=1)
    batch_max_wait_ms: int = Field(50, ge=0)
    outbox_batch: int = Field(1000, ge=1)
    sweep_interval_s: float = Field(30.0, gt=0)
    # How often the service reads its dead-letter topic's size (`fx_dlq_size`); 0: never.
    dlq_size_interval_s: float = Field(30.0, ge=0)
    log_level: str = "INFO"

    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / (self.service.replace('-', '_') + '.db')}"
