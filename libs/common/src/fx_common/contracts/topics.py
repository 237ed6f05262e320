"""Topic names and consumer groups: the public surface of docs/contract.md, kept exactly."""

MALL_SHARES = "mall.shares.v1"
MALL_ORDERS = "mall.orders.v1"
QUALIFICATION = "fx.qualification.v1"
QUALIFICATION_COMMANDS = "fx.qualification.commands.v1"
BINDINGS = "fx.bindings.v1"
ATTRIBUTIONS = "fx.attributions.v1"
COMMISSIONS = "fx.commissions.v1"
PAYOUTS = "fx.payouts.v1"
CLOCK = "fx.clock.v1"

SERVICES = ("referral-binding", "qualification", "commission", "payout")


def dlq_topic(service: str) -> str:
    return f"fx.dlq.{service}.v1"


def consumer_group(service: str) -> str:
    return f"fx-{service}"


def event_source(service: str) -> str:
    return f"/fx/{service}"
