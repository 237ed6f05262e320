"""Money is integer fen (1/100 CNY). Every division rounds down (floor), per line.

Rounding rule, documented once: `apply_bps(base, bps) = floor(base * bps / 10000)` and
`pro_rata(amount, part, whole) = floor(amount * part / whole)`. Flooring never pays out a
fen that was not earned; the remainder stays with the merchant.
"""

from __future__ import annotations

BPS_DENOMINATOR = 10_000


def _check(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be integer fen, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def apply_bps(base_fen: int, rate_bps: int) -> int:
    _check(base_fen, "base_fen")
    _check(rate_bps, "rate_bps")
    return base_fen * rate_bps // BPS_DENOMINATOR


def pro_rata(amount_fen: int, part: int, whole: int) -> int:
    """The share `part/whole` of `amount_fen`, floored; `part` is capped at `whole`."""
    _check(amount_fen, "amount_fen")
    _check(part, "part")
    if whole <= 0:
        raise ValueError("whole must be positive")
    return amount_fen * min(part, whole) // whole


def format_cny(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}¥{yuan}.{cents:02d}"
