"""The ops console's forms: each checks its CSRF token and its input, sends one command to
the service that owns it with the operator's token, and returns to the page with the outcome.
A refused command (the service's 4xx) changed nothing; its reason is shown in plain words.
Every action is logged with the operator's id (`fx_console` logger): the console's audit."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from fx_console.client import ApiFailure
from fx_console.ops import _distributor_id, ops
from fx_console.web import (
    Refused,
    SignedIn,
    checked_form,
    console_of,
    done,
    log,
    text_field,
)

router = APIRouter(prefix="/ops")
REVIEW = {
    "approve": ("approve", None, None),
    "reject": ("reject", "reason", "A reason for the rejection"),
    "mark-paid": ("mark-paid", "transfer_ref", "The transfer reference"),
    "mark-failed": ("mark-failed", "reason", "A reason for the failure"),
}


async def _send(
    request: Request,
    who: SignedIn,
    action: str,
    target: str,
    back: str,
    call: Any,
    success: str,
) -> Response:
    try:
        await call
    except ApiFailure as exc:
        log.info(
            "ops action refused",
            extra={"operator": who.sub, "action": action, "target": target, "code": exc.code},
        )
        return done(back, f"Refused, nothing changed — {exc.message}", ok=False)
    log.info("ops action", extra={"operator": who.sub, "action": action, "target": target})
    return done(back, success)


async def _form(request: Request) -> tuple[SignedIn, FormData]:
    who = ops(request)
    return who, await checked_form(request, who)


@router.post("/candidates/{user_id}/confirm")
async def confirm(request: Request, user_id: str) -> Response:
    who, _ = await _form(request)
    uid = _distributor_id(user_id)
    call = console_of(request).services.post(
        "qualification", f"/v1/applications/{uid}/contact-confirmed", who.token
    )
    return await _send(
        request, who, "confirm_contact", user_id, "/ops/candidates", call,
        f"{user_id}'s WeChat contact is confirmed: the assessment has started.",
    )  # fmt: skip


async def _distributor_decision(
    request: Request, user_id: str, action: str, reason_label: str, success: str
) -> Response:
    who, form = await _form(request)
    uid = _distributor_id(user_id)
    reason = text_field(form, "reason", reason_label)
    call = console_of(request).services.post(
        "qualification", f"/v1/distributors/{uid}/{action}", who.token, json={"reason": reason}
    )
    return await _send(request, who, action, user_id, f"/ops/distributors/{uid}", call, success)


@router.post("/distributors/{user_id}/revoke")
async def revoke(request: Request, user_id: str) -> Response:
    return await _distributor_decision(
        request, user_id, "revoke", "A reason for the revocation",
        f"{user_id} is revoked: its unsettled commission is voided.",
    )  # fmt: skip


@router.post("/distributors/{user_id}/appoint")
async def appoint(request: Request, user_id: str) -> Response:
    """FX_QUALIFICATION_MODE=appointed: ops make the user a distributor (who and why kept)."""
    return await _distributor_decision(
        request, user_id, "appoint", "A reason for the appointment",
        f"{user_id} is appointed a distributor.",
    )  # fmt: skip


@router.post("/withdrawals/{withdrawal_id}/{action}")
async def review(request: Request, withdrawal_id: str, action: str) -> Response:
    who, form = await _form(request)
    if action not in REVIEW:
        raise Refused(404, f"There is no withdrawal action {action!r}.")
    path, field, label = REVIEW[action]
    body = {field: text_field(form, field, label)} if field and label else None
    back = form.get("back")
    back = back if isinstance(back, str) and back.startswith("/ops/") else "/ops/withdrawals"
    wid = quote(withdrawal_id, safe="")
    call = console_of(request).services.post(
        "payout", f"/v1/withdrawals/{wid}/{path}", who.token, json=body
    )
    return await _send(
        request, who, f"withdrawal_{action}", withdrawal_id, back, call,
        f"Withdrawal {withdrawal_id}: {action.replace('-', ' ')} done.",
    )  # fmt: skip


def _override_target(form: FormData) -> tuple[str, str, str]:
    scope = text_field(form, "scope", "Whether the override is for a SKU or a category")
    if scope not in ("sku", "category"):
        raise Refused(422, "An override is for a SKU or for a category.")
    key = text_field(form, "key", "The SKU or category")
    version = text_field(form, "version", "The plan version you edited")
    if not version.isdigit():
        raise Refused(422, "The plan version must be a whole number: reload the plan page.")
    return f"/v1/plan/{'skus' if scope == 'sku' else 'categories'}/{quote(key, safe='')}", \
        key, version  # fmt: skip


def _rule(form: FormData) -> dict[str, int]:
    kind = text_field(form, "rule", "The kind of rule")
    raw = text_field(form, "value", "The rate or amount")
    if kind not in ("rate_bps", "fen_per_unit"):
        raise Refused(422, "The rule is a rate in bps or a fixed fen per unit.")
    if not raw.isdigit() or len(raw) > 12:
        raise Refused(422, f"{raw!r} is not a whole number (bps, or fen per unit).")
    value = int(raw)
    if kind == "rate_bps" and value > 10_000:
        raise Refused(422, f"A rate is at most 10000 bps (100 %); {value} is more.")
    return {kind: value}


async def _plan_edit(request: Request, method: str) -> Response:
    who, form = await _form(request)
    try:
        path, key, version = _override_target(form)
        body = _rule(form) if method == "PUT" else None
    except Refused as exc:
        return done("/ops/plan", f"Nothing was sent — {exc.message}", ok=False)
    headers = {"If-Match": f'"{version}"'}
    call = console_of(request).services.call(
        "commission", method, path, who.token, json=body, headers=headers
    )
    try:
        await call
    except ApiFailure as exc:
        log.info("ops action refused", extra={"operator": who.sub, "action": f"plan_{method}",
                                              "target": key, "code": exc.code})  # fmt: skip
        if exc.code == "version_mismatch":
            return done(
                "/ops/plan",
                f"Another edit landed first: version {version}, which you edited, is no longer "
                "the latest. Nothing was changed; the plan below is the current one — make "
                "your change again if it still applies.",
                ok=False,
            )
        return done("/ops/plan", f"Refused, nothing changed — {exc.message}", ok=False)
    log.info("ops action", extra={"operator": who.sub, "action": f"plan_{method}", "target": key})
    verb = "set" if method == "PUT" else "removed"
    return done("/ops/plan", f"Override for {key} {verb}: a new plan version was created.")


@router.post("/plan/override")
async def set_override(request: Request) -> Response:
    return await _plan_edit(request, "PUT")


@router.post("/plan/override/remove")
async def remove_override(request: Request) -> Response:
    return await _plan_edit(request, "DELETE")
