"""Sign-in and sign-out. The session is the user's own token in an HttpOnly, SameSite=Strict
cookie (the console stores nothing): a token from the mall's identity provider, or in
FX_ENV=dev|test a local sign-in the console signs with FX_JWT_SECRET."""

from __future__ import annotations

import hmac
import time

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fx_common.auth import Role, issue_token
from fx_common.errors import ApiError
from fx_console.web import (
    PRE_COOKIE,
    SESSION_COOKIE,
    USER_ID,
    Refused,
    SignInNeeded,
    console_of,
    csrf_token,
    new_pre_anchor,
    render,
    signed_in,
)

router = APIRouter()
HOME = {Role.OPS: "/ops", Role.DISTRIBUTOR: "/me"}


@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    try:
        who = signed_in(request)
    except SignInNeeded:
        who = None
    if who is None:
        return RedirectResponse("/signin", status_code=303)
    if who.role not in HOME:
        raise Refused(403, f"The {who.role} role has no pages here (signed in as {who.sub}).")
    return RedirectResponse(HOME[who.role], status_code=303)


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, why: str | None = None) -> Response:
    return sign_in_form(request, why)


def sign_in_form(request: Request, message: str | None, status: int = 200) -> Response:
    console = console_of(request)
    anchor = request.cookies.get(PRE_COOKIE) or new_pre_anchor()
    response = render(
        request, "signin.html", None, status_code=status,
        csrf=csrf_token(console, anchor), local=console.local_sign_in, error=message,
    )  # fmt: skip
    response.set_cookie(
        PRE_COOKIE, anchor, httponly=True, samesite="strict", path="/",
        secure=console.secure_cookies,
    )  # fmt: skip
    return response


async def _pre_checked(request: Request) -> dict[str, str]:
    form = await request.form()
    anchor = request.cookies.get(PRE_COOKIE, "")
    given = form.get("csrf")
    expected = csrf_token(console_of(request), anchor)
    if not anchor or not isinstance(given, str) or not hmac.compare_digest(given, expected):
        raise Refused(403, "This sign-in form has expired or did not come from this console.")
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/signin")
async def sign_in(request: Request) -> Response:
    """A token from the mall's identity provider (pasted or posted by its redirect)."""
    form = await _pre_checked(request)
    token = form.get("token", "").strip()
    if not token:
        return sign_in_form(request, "Paste a token from the mall's sign-in.", 422)
    return _start_session(request, token)


@router.post("/signin/local")
async def sign_in_locally(request: Request) -> Response:
    """FX_ENV=dev|test only: the console signs a token for the user and role given."""
    console = console_of(request)
    form = await _pre_checked(request)
    if not console.local_sign_in:
        raise Refused(404, "Local sign-in exists only with FX_ENV=dev or test and HS256 tokens.")
    user = form.get("user_id", "").strip()
    role = form.get("role", "")
    if role not in (Role.OPS, Role.DISTRIBUTOR) or not USER_ID.fullmatch(user):
        return sign_in_form(request, "Give a user id (letters, digits, - _ .) and a role.", 422)
    settings = console.settings
    token = issue_token(
        settings.jwt_secret, user, role, ttl_s=settings.console_dev_session_s,
        issuer=settings.jwt_issuer, audience=settings.jwt_audience,
    )  # fmt: skip
    return _start_session(request, token)


def _start_session(request: Request, token: str) -> Response:
    console = console_of(request)
    try:
        who = console.verifier.verify(token)
    except ApiError as exc:
        return sign_in_form(request, f"That token is refused: {exc.message}.", 401)
    if who.role not in HOME:
        return sign_in_form(request, f"The {who.role} role has no pages here.", 403)
    claims_exp = _expiry(token)
    response = RedirectResponse(HOME[who.role], status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max(1, claims_exp - int(time.time())), httponly=True,
        samesite="strict", secure=console.secure_cookies, path="/",
    )  # fmt: skip
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


def _expiry(token: str) -> int:
    claims = jwt.decode(token, options={"verify_signature": False})
    return int(claims["exp"])


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    who = signed_in(request)
    if who is not None:
        form = await request.form()
        given = form.get("csrf")
        if not isinstance(given, str) or not hmac.compare_digest(given, who.csrf):
            raise Refused(403, "This form has expired or did not come from this console.")
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
