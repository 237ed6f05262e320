"""Every event type we consume or publish: its data model, its topic and its Kafka key.

Lookups by `ce_type` return `None` for types we do not know. What a consumer does with an
event depends on its type and the topic it arrived on (`classify`): a type of this contract
is accepted only on its own topic; the mall's other types listed in `IGNORED_TYPES` are
ignored on purpose; any other `mall.order.*` / `mall.share.*` type is most likely a typo or
a new type nobody agreed on, and is dead-lettered; other unknown types are ignored (counted
and logged).
"""

from enum import StrEnum

from pydantic import BaseModel

from fx_common.contracts import (
    attributions,
    bindings,
    clock,
    commissions,
    mall_orders,
    mall_shares,
    payouts,
    qualification,
    topics,
)
from fx_common.contracts.base import ContractModel

__all__ = [
    "EVENT_KEY_FIELD",
    "EVENT_MODELS",
    "EVENT_TOPIC",
    "GUARDED_PREFIXES",
    "IGNORED_TYPES",
    "TOPIC_CONSTANT_KEY",
    "TOPIC_EVENT_TYPES",
    "TOPIC_KEY_FIELD",
    "TypeVerdict",
    "classify",
    "key_for",
    "model_for",
    "type_for",
]

TOPIC_EVENT_TYPES: dict[str, tuple[str, ...]] = {
    topics.MALL_SHARES: (mall_shares.SHARE_CREATED, mall_shares.SHARE_VISITED),
    topics.MALL_ORDERS: (
        mall_orders.ORDER_PAID,
        mall_orders.ORDER_COMPLETED,
        mall_orders.ORDER_REFUNDED,
    ),
    topics.QUALIFICATION: (
        qualification.DISTRIBUTOR_APPLIED,
        qualification.ASSESSMENT_STARTED,
        qualification.ASSESSMENT_PROGRESSED,
        qualification.DISTRIBUTOR_QUALIFIED,
        qualification.ASSESSMENT_FAILED,
        qualification.DISTRIBUTOR_REVOKED,
    ),
    topics.QUALIFICATION_COMMANDS: (qualification.COMMAND_ACCEPTED,),
    topics.BINDINGS: (
        bindings.BINDING_CREATED,
        bindings.BINDING_EXTENDED,
        bindings.BINDING_RELEASED,
    ),
    topics.ATTRIBUTIONS: (
        attributions.ORDER_ATTRIBUTED,
        attributions.ATTRIBUTED_ORDER_COMPLETED,
        attributions.ATTRIBUTED_ORDER_REFUNDED,
        attributions.RECRUITER_RECORDED,
    ),
    topics.COMMISSIONS: (
        commissions.COMMISSION_ACCRUED,
        commissions.COMMISSION_RELEASED,
        commissions.COMMISSION_VOIDED,
        commissions.COMMISSION_ADJUSTED,
        commissions.COMMISSION_SETTLED,
        commissions.COMMISSION_REVERSED,
    ),
    topics.PAYOUTS: (
        payouts.WITHDRAWAL_REQUESTED,
        payouts.WITHDRAWAL_APPROVED,
        payouts.WITHDRAWAL_REJECTED,
        payouts.WITHDRAWAL_PAID,
        payouts.WITHDRAWAL_FAILED,
    ),
    topics.CLOCK: (clock.CLOCK_SET,),
}

EVENT_MODELS: dict[str, type[ContractModel]] = {
    mall_shares.SHARE_CREATED: mall_shares.ShareCreated,
    mall_shares.SHARE_VISITED: mall_shares.ShareVisited,
    mall_orders.ORDER_PAID: mall_orders.OrderPaid,
    mall_orders.ORDER_COMPLETED: mall_orders.OrderCompleted,
    mall_orders.ORDER_REFUNDED: mall_orders.OrderRefunded,
    qualification.DISTRIBUTOR_APPLIED: qualification.DistributorApplied,
    qualification.ASSESSMENT_STARTED: qualification.AssessmentStarted,
    qualification.ASSESSMENT_PROGRESSED: qualification.AssessmentProgressed,
    qualification.DISTRIBUTOR_QUALIFIED: qualification.DistributorQualified,
    qualification.ASSESSMENT_FAILED: qualification.AssessmentFailed,
    qualification.DISTRIBUTOR_REVOKED: qualification.DistributorRevoked,
    qualification.COMMAND_ACCEPTED: qualification.CommandAccepted,
    bindings.BINDING_CREATED: bindings.BindingCreated,
    bindings.BINDING_EXTENDED: bindings.BindingExtended,
    bindings.BINDING_RELEASED: bindings.BindingReleased,
    attributions.ORDER_ATTRIBUTED: attributions.OrderAttributed,
    attributions.ATTRIBUTED_ORDER_COMPLETED: attributions.AttributedOrderCompleted,
    attributions.ATTRIBUTED_ORDER_REFUNDED: attributions.AttributedOrderRefunded,
    attributions.RECRUITER_RECORDED: attributions.RecruiterRecorded,
    commissions.COMMISSION_ACCRUED: commissions.CommissionAccrued,
    commissions.COMMISSION_RELEASED: commissions.CommissionReleased,
    commissions.COMMISSION_VOIDED: commissions.CommissionVoided,
    commissions.COMMISSION_ADJUSTED: commissions.CommissionAdjusted,
    commissions.COMMISSION_SETTLED: commissions.CommissionSettled,
    commissions.COMMISSION_REVERSED: commissions.CommissionReversed,
    payouts.WITHDRAWAL_REQUESTED: payouts.WithdrawalRequested,
    payouts.WITHDRAWAL_APPROVED: payouts.WithdrawalApproved,
    payouts.WITHDRAWAL_REJECTED: payouts.WithdrawalRejected,
    payouts.WITHDRAWAL_PAID: payouts.WithdrawalPaid,
    payouts.WITHDRAWAL_FAILED: payouts.WithdrawalFailed,
    clock.CLOCK_SET: clock.ClockSet,
}

EVENT_TOPIC: dict[str, str] = {
    ce_type: topic for topic, ce_types in TOPIC_EVENT_TYPES.items() for ce_type in ce_types
}

TOPIC_KEY_FIELD: dict[str, str] = {
    topics.MALL_ORDERS: "buyer_id",
    topics.QUALIFICATION: "user_id",
    topics.QUALIFICATION_COMMANDS: "user_id",
    topics.BINDINGS: "customer_id",
    topics.ATTRIBUTIONS: "distributor_id",
    topics.COMMISSIONS: "distributor_id",
    topics.PAYOUTS: "distributor_id",
}
"""The data field whose value is the Kafka key, for topics where it is the same for every type.

Not listed: `mall.shares.v1` (the key depends on the type, see `EVENT_KEY_FIELD`) and
`fx.clock.v1` (a constant key, see `TOPIC_CONSTANT_KEY`). `key_for` covers every type.
"""

TOPIC_CONSTANT_KEY: dict[str, str] = {topics.CLOCK: clock.CLOCK_KEY}
"""Topics whose Kafka key is a constant rather than a data field."""

EVENT_KEY_FIELD: dict[str, str] = {
    mall_shares.SHARE_CREATED: "sharer_id",
    mall_shares.SHARE_VISITED: "visitor_id",
    **{
        ce_type: TOPIC_KEY_FIELD[topic]
        for ce_type, topic in EVENT_TOPIC.items()
        if topic in TOPIC_KEY_FIELD
    },
}
"""The data field whose value is the Kafka key, per `ce_type` (constant-key types excluded)."""


def model_for(ce_type: str) -> type[ContractModel] | None:
    """The data model of `ce_type`, or `None` when the type is not part of our contracts."""
    return EVENT_MODELS.get(ce_type)


_TYPE_OF_MODEL: dict[type[BaseModel], str] = {model: t for t, model in EVENT_MODELS.items()}


def type_for(model: type[BaseModel]) -> str:
    """The `ce_type` whose data is `model` (each type has its own model)."""
    try:
        return _TYPE_OF_MODEL[model]
    except KeyError:
        raise KeyError(f"{model.__name__} is no event type of the contract") from None


def key_for(ce_type: str, data: BaseModel) -> str:
    """The Kafka key of an event of type `ce_type` with this data (it defines ordering)."""
    field = EVENT_KEY_FIELD.get(ce_type)
    if field is not None:
        key = getattr(data, field)
        if not isinstance(key, str):
            raise TypeError(f"{ce_type}: key field {field!r} is not a string")
        return key
    topic = EVENT_TOPIC.get(ce_type)
    if topic is not None and topic in TOPIC_CONSTANT_KEY:
        return TOPIC_CONSTANT_KEY[topic]
    raise KeyError(f"unknown event type {ce_type!r}")


IGNORED_TYPES: dict[str, frozenset[str]] = {
    topics.MALL_ORDERS: frozenset(
        {
            "mall.order.created",
            "mall.order.cancelled",
            "mall.order.shipped",
            "mall.order.closed",
        }
    ),
    topics.MALL_SHARES: frozenset({"mall.share.deleted"}),
}
"""The mall's other types on its topics that fenxiao ignores on purpose (documented)."""

GUARDED_PREFIXES = ("mall.order.", "mall.share.")
"""Namespaces fenxiao consumes: an unknown type in them is dead-lettered, not ignored."""


class TypeVerdict(StrEnum):
    ACCEPT = "accept"
    """A type of this contract, on its own topic: decode and handle."""
    IGNORE = "ignore"
    """Ignored: documented (`IGNORED_TYPES`) or outside the namespaces fenxiao consumes."""
    WRONG_TOPIC = "wrong_topic"
    """A type of this contract on another topic than its own: dead-lettered."""
    UNKNOWN_TYPE = "unknown_type"
    """An unknown type in a namespace fenxiao consumes (e.g. `mall.order.payed`)."""


def classify(ce_type: str, topic: str) -> TypeVerdict:
    """What a consumer does with an event of `ce_type` read from `topic` (no namespace)."""
    own = EVENT_TOPIC.get(ce_type)
    if own is not None:
        # A topic outside the contract (a test's or a tool's own) carries whatever it is given.
        wrong = own != topic and topic in TOPIC_EVENT_TYPES
        return TypeVerdict.WRONG_TOPIC if wrong else TypeVerdict.ACCEPT
    if ce_type in IGNORED_TYPES.get(topic, ()):
        return TypeVerdict.IGNORE
    if ce_type.startswith(GUARDED_PREFIXES):
        return TypeVerdict.UNKNOWN_TYPE
    return TypeVerdict.IGNORE
