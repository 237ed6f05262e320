"""`mall.shares.v1`: shares and visits published by the mall (upstream; we only consume).

Kafka key: `visitor_id` for visits, `sharer_id` for creations.
"""

from pydantic import Field

from fx_common.contracts.base import ContractModel, StrictId

__all__ = ["SHARE_CREATED", "SHARE_VISITED", "ShareCreated", "ShareVisited"]

SHARE_CREATED = "mall.share.created"
SHARE_VISITED = "mall.share.visited"


class ShareCreated(ContractModel):
    """A user shared a product link or poster.

    referral-binding relies on `share_id` → `sharer_id` to resolve the sharer of a later
    visit or of an order placed through the share link.
    """

    share_id: StrictId
    sharer_id: StrictId = Field(description="The user who shared.")
    product_sku: StrictId | None = Field(default=None, description="The shared product, if any.")
    channel: StrictId | None = Field(
        default=None, description="Where it was shared (e.g. wechat_chat, moments, poster)."
    )


class ShareVisited(ContractModel):
    """Another user opened a share; the visit time is the event's `ce_time`.

    referral-binding relies on it to bind `visitor_id` to `sharer_id` when the rules allow.
    """

    share_id: StrictId
    sharer_id: StrictId = Field(description="The user who shared.")
    visitor_id: StrictId = Field(description="The user who opened the share.")
