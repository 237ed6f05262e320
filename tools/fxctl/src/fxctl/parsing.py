"""Parsing what people type: RFC 3339 times and durations (`7d`, `12h30m`, `P7D`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_SHORT = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_ISO = re.compile(
    r"P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp with a timezone (`Z` or an offset), returned in UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 time: {text!r}") from exc
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no timezone (add Z or +08:00)")
    return moment.astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `45s`, `2w`, combinations like `1d12h`, or ISO 8601 (`P7D`, `PT12H`).

    Years and months are refused: their length depends on the date.
    """
    value = text.strip()
    upper = value.upper()
    if upper.startswith("P"):
        match = _ISO.fullmatch(upper)
        if not match or upper in ("P", "PT") or upper.endswith("T"):
            raise ValueError(f"not an ISO 8601 duration (days or less): {text!r}")
        seconds = sum(float(v) * _UNITS[u] for u, v in match.groupdict().items() if v)
    else:
        parts = _SHORT.findall(value.lower())
        if not parts or "".join(n + u for n, u in parts) != value.lower():
            raise ValueError(f"not a duration: {text!r} (e.g. 7d, 12h, 30m, 1d12h, P7D)")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return timedelta(seconds=seconds)
