"""`fx.clock.v1`: the simulated clock (producer: fxctl; non-production only).

Kafka key: the constant `clock` (one partition order for all moves).
"""

from fx_common.contracts.base import ContractModel, EventTime

__all__ = ["CLOCK_KEY", "CLOCK_SET", "ClockSet"]

CLOCK_SET = "fx.clock.set"
CLOCK_KEY = "clock"


class ClockSet(ContractModel):
    """The simulated now moved to `now`; it never moves back.

    Under `FX_CLOCK=simulated` every service runs its time-driven rules (deadlines, expiries,
    settlement) on every move and takes the time of HTTP commands from it.
    """

    now: EventTime
