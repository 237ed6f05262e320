"""`fx.bindings.v1`: customer → distributor bindings (producer: referral-binding).

Kafka key: `customer_id`. A binding is an interval (its start is the event time of
`fx.binding.created`); it is never deleted, only released.
"""

from typing import Literal

from pydantic import Field

from fx_common.contracts.base import ContractModel, DerivedTime, StrictId

__all__ = [
    "BINDING_CREATED",
    "BINDING_EXTENDED",
    "BINDING_RELEASED",
    "BindingCreated",
    "BindingExtended",
    "BindingReleased",
]

BINDING_CREATED = "fx.binding.created"
BINDING_EXTENDED = "fx.binding.extended"
BINDING_RELEASED = "fx.binding.released"


class BindingCreated(ContractModel):
    """A customer was bound to a distributor through a share (a visit or a share-link order)."""

    binding_id: StrictId
    customer_id: StrictId
    distributor_id: StrictId
    share_id: StrictId = Field(description="The share that created the binding.")
    protected_until: DerivedTime = Field(
        description="End of the protection period (RFC 3339, before 2200-01-01T00:00:00Z)."
    )
    order_id: StrictId | None = Field(
        default=None, description="Set when the binding was created by a share-link order."
    )


class BindingExtended(ContractModel):
    """A paid order of the bound customer extended the protection period."""

    binding_id: StrictId
    customer_id: StrictId
    distributor_id: StrictId
    order_id: StrictId = Field(description="The paid order that extended the protection.")
    protected_until: DerivedTime = Field(
        description="The new end of the protection period (RFC 3339, before 2200-01-01T00:00:00Z)."
    )


class BindingReleased(ContractModel):
    """A binding ended: its protection expired, its distributor failed or was revoked, or
    (`FX_BINDING_MODE=overwrite`) another sharer's visit re-bound the customer."""

    binding_id: StrictId
    customer_id: StrictId
    distributor_id: StrictId
    reason: Literal["expired", "distributor_ineligible", "overwritten"]
