"""Field and parameter types of the HTTP APIs whose JSON Schema says exactly what the service
accepts (so a schema-valid request is never refused for its shape, nor an invalid one
accepted)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
"""1+ characters, none a control character (Postgres refuses NUL in text)."""


def integral(value: Any) -> Any:
    """A JSON number without a fractional part is that integer (`1200.0` is 1200), as JSON
    Schema's `"type": "integer"` says; a fraction, a string or a boolean stays refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def integer(ge: int, le: int, description: str) -> Any:
    return Annotated[
        int, Field(strict=True, ge=ge, le=le, description=description), BeforeValidator(integral)
    ]


PathId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
"""An identifier in a path: 1-128 characters, no control characters."""


def _rfc3339(value: Any) -> Any:
    """pydantic would read a number (or a numeric string) as epoch seconds; the schema says
    an RFC 3339 string, so refuse it."""
    text = str(value).strip() if isinstance(value, str | int | float) else None
    if isinstance(value, int | float) or (text and _is_number(text)):
        raise ValueError("a time is RFC 3339 with a timezone, e.g. 2026-01-01T08:00:00Z")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the time is out of range once converted to UTC") from exc


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_utc)]
"""A time: an RFC 3339 string with a timezone (never a number), converted to UTC."""
