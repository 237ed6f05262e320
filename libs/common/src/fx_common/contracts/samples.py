"""One valid `data` object per event type, as it appears on the wire (JSON types only).

Shared by tests: copy before mutating (`copy.deepcopy(SAMPLES[ce_type])`). The samples tell
one consistent story: sharer `u-sharer` is a candidate, `u-buyer` visits their share, buys,
the candidate qualifies, the order completes and is partly refunded, commission settles and is
withdrawn.
"""

from copy import deepcopy
from typing import Any

__all__ = ["SAMPLES", "examples_of"]

_LINES: list[dict[str, Any]] = [
    {
        "line_id": "l-1",
        "sku": "tea-oolong-250g",
        "category": "oolong",
        "quantity": 2,
        "paid_amount_fen": 25800,
    },
    {"line_id": "l-2", "sku": "cup-glass", "quantity": 1, "paid_amount_fen": 3900},
]
_REFUND_LINES: list[dict[str, Any]] = [{"line_id": "l-1", "refund_amount_fen": 12900}]
_WITHDRAWAL: dict[str, Any] = {
    "withdrawal_id": "w-1",
    "distributor_id": "u-sharer",
    "amount_fen": 2580,
    "fee_fen": 0,
    "method": "wechat_wallet",
}

SAMPLES: dict[str, dict[str, Any]] = {
    "mall.share.created": {
        "share_id": "s-1",
        "sharer_id": "u-sharer",
        "product_sku": "tea-oolong-250g",
        "channel": "wechat_chat",
    },
    "mall.share.visited": {"share_id": "s-1", "sharer_id": "u-sharer", "visitor_id": "u-buyer"},
    "mall.order.paid": {
        "order_id": "o-1",
        "buyer_id": "u-buyer",
        "share_id": "s-1",
        "currency": "CNY",
        "lines": deepcopy(_LINES),
        "shipping_fen": 1000,
    },
    "mall.order.completed": {"order_id": "o-1", "buyer_id": "u-buyer"},
    "mall.order.refunded": {
        "order_id": "o-1",
        "buyer_id": "u-buyer",
        "refund_id": "r-1",
        "lines": deepcopy(_REFUND_LINES),
    },
    "fx.distributor.applied": {"user_id": "u-sharer"},
    "fx.distributor.assessment_started": {
        "user_id": "u-sharer",
        "deadline": "2025-02-01T00:00:00Z",
        "required_orders": 3,
    },
    "fx.distributor.assessment_progressed": {
        "user_id": "u-sharer",
        "qualifying_orders": 1,
        "required_orders": 3,
    },
    "fx.distributor.qualified": {"user_id": "u-sharer", "order_ids": ["o-1", "o-2", "o-3"]},
    "fx.distributor.assessment_failed": {"user_id": "u-sharer", "qualifying_orders": 2},
    "fx.distributor.revoked": {"user_id": "u-sharer", "reason": "fake orders"},
    "fx.qualification.command_accepted": {
        "command": "apply",
        "user_id": "u-sharer",
        "wechat_id": "wx-sharer",
        "mode": "assessment",
        "contact_step": False,
        "required_orders": 3,
        "assessment_window_s": 2592000,
        "counts_own_orders": False,
        "reapply_cooldown_s": 604800,
    },
    "fx.binding.created": {
        "binding_id": "b-1",
        "customer_id": "u-buyer",
        "distributor_id": "u-sharer",
        "share_id": "s-1",
        "protected_until": "2025-06-30T10:00:00Z",
    },
    "fx.binding.extended": {
        "binding_id": "b-1",
        "customer_id": "u-buyer",
        "distributor_id": "u-sharer",
        "order_id": "o-1",
        "protected_until": "2025-07-02T08:30:00+08:00",
    },
    "fx.binding.released": {
        "binding_id": "b-1",
        "customer_id": "u-buyer",
        "distributor_id": "u-sharer",
        "reason": "expired",
    },
    "fx.order.attributed": {
        "order_id": "o-1",
        "buyer_id": "u-buyer",
        "distributor_id": "u-sharer",
        "basis": "binding",
        "paid_at": "2025-01-03T00:30:00Z",
        "lines": deepcopy(_LINES),
    },
    "fx.order.completed": {"order_id": "o-1", "distributor_id": "u-sharer"},
    "fx.order.refunded": {
        "order_id": "o-1",
        "distributor_id": "u-sharer",
        "refund_id": "r-1",
        "lines": deepcopy(_REFUND_LINES),
    },
    "fx.recruiter.recorded": {
        "distributor_id": "u-buyer",
        "recruiter_id": "u-sharer",
        "binding_id": "b-1",
        "applied_at": "2025-01-20T08:00:00Z",
    },
    "fx.commission.accrued": {
        "commission_id": "c-o-1-l-1",
        "distributor_id": "u-sharer",
        "order_id": "o-1",
        "line_id": "l-1",
        "amount_fen": 2580,
        "rate_bps": 1000,
        "status": "held",
        "plan_version": 1,
    },
    "fx.commission.released": {
        "commission_id": "c-o-1-l-1",
        "distributor_id": "u-sharer",
        "order_id": "o-1",
        "line_id": "l-1",
        "amount_fen": 2580,
    },
    "fx.commission.voided": {
        "commission_id": "c-o-1-l-2",
        "distributor_id": "u-sharer",
        "order_id": "o-1",
        "line_id": "l-2",
        "amount_fen": 390,
        "reason": "fully refunded",
    },
    "fx.commission.adjusted": {
        "commission_id": "c-o-1-l-1",
        "distributor_id": "u-sharer",
        "order_id": "o-1",
        "line_id": "l-1",
        "amount_fen": 1290,
        "refund_id": "r-1",
    },
    "fx.commission.settled": {
        "commission_id": "c-o-1-l-1",
        "distributor_id": "u-sharer",
        "order_id": "o-1",
        "amount_fen": 1290,
    },
    "fx.commission.reversed": {
        "commission_id": "c-o-1-l-1",
        "distributor_id": "u-sharer",
        "order_id": "o-1",
        "amount_fen": 645,
        "refund_id": "r-2",
    },
    "fx.withdrawal.requested": dict(_WITHDRAWAL),
    "fx.withdrawal.approved": dict(_WITHDRAWAL),
    "fx.withdrawal.rejected": {**_WITHDRAWAL, "reason": "account name mismatch"},
    "fx.withdrawal.paid": {**_WITHDRAWAL, "transfer_ref": "wx-tr-0001"},
    "fx.withdrawal.failed": {**_WITHDRAWAL, "reason": "wallet not verified"},
    "fx.clock.set": {"now": "2025-01-03T00:00:00Z"},
}


_EXTREMES: dict[str, list[dict[str, Any]]] = {
    "mall.order.paid": [
        {
            "order_id": "o-max",
            "buyer_id": "u-buyer",
            "currency": "CNY",
            "lines": [
                {
                    "line_id": "l-1",
                    "sku": "tea-gift-box",
                    "quantity": 2147483647,
                    "paid_amount_fen": 9007199254740991,
                }
            ],
        }
    ],
    "fx.clock.set": [{"now": "2099-12-31T23:59:59Z"}],
}
"""Examples at the edges of what the contract accepts (largest money and count, latest time)."""


def examples_of(ce_type: str) -> list[dict[str, Any]]:
    """The `examples` of the schema of `ce_type`: the sample, then edge cases."""
    return [deepcopy(SAMPLES[ce_type]), *deepcopy(_EXTREMES.get(ce_type, []))]
