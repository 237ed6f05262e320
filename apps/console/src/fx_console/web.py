"""What every page shares: the app's state, the signed-in user, CSRF, rendering, flashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from fx_common.auth import LENIENT_ENVS, Role, TokenVerifier
from fx_common.errors import ApiError
from fx_common.money import format_cny
from fx_console.client import Services
from fx_console.settings import ConsoleSettings

log = logging.getLogger("fx_console")
HERE = Path(__file__).parent
SESSION_COOKIE = "fx_session"
PRE_COOKIE = "fx_pre"  # anchors the sign-in form's CSRF token before there is a session
FLASH_COOKIE = "fx_flash"
USER_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str | None
    price_fen: int


@dataclass
class Console:
    settings: ConsoleSettings
    verifier: TokenVerifier
    services: Services
    templates: Jinja2Templates
    csrf_key: bytes
    catalogue: list[Product]

    @property
    def local_sign_in(self) -> bool:
        """FX_ENV=dev|test with HS256: the console may sign a token itself."""
        return self.settings.env in LENIENT_ENVS and not self.settings.jwt_jwks

    @property
    def secure_cookies(self) -> bool:
        return self.settings.env not in LENIENT_ENVS


@dataclass(frozen=True)
class SignedIn:
    sub: str
    role: Role
    token: str
    csrf: str


class Refused(Exception):
    """A page the signed-in user may not see, or a form refused before anything was sent."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInNeeded(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def csrf_token(console: Console, anchor: str) -> str:
    return hmac.new(console.csrf_key, anchor.encode(), hashlib.sha256).hexdigest()


def signed_in(request: Request) -> SignedIn | None:
    """The session cookie's token, verified now (None without one); SignInNeeded when it no
    longer verifies (expired, another key)."""
    console = console_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        who = console.verifier.verify(token)
    except ApiError as exc:
        raise SignInNeeded(f"Please sign in again: {exc.message}.") from exc
    return SignedIn(who.sub, who.role, token, csrf_token(console, token))


def require(request: Request, role: Role) -> SignedIn:
    who = signed_in(request)
    if who is None:
        raise SignInNeeded("Please sign in.")
    if who.role is not role:
        pages = "the ops console" if role is Role.OPS else "the distributor centre"
        raise Refused(403, f"{pages} is not for the {who.role} role (signed in as {who.sub}).")
    return who


async def checked_form(request: Request, who: SignedIn) -> FormData:
    """The form of a POST whose CSRF token matches the session; Refused (403) otherwise."""
    form = await request.form()
    given = form.get("csrf")
    if not isinstance(given, str) or not hmac.compare_digest(given, who.csrf):
        raise Refused(403, "This form has expired or did not come from this console: reload it.")
    # Behind a TLS-terminating proxy the scheme differs; the host must be this one.
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        raise Refused(403, f"A form posted from another site ({origin}) is refused.")
    return form


def text_field(form: FormData, name: str, label: str, *, required: bool = True) -> str:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise Refused(422, f"{label} is required.")
    return text


def mall_time(console: Console, value: Any) -> str:
    """An ISO-8601 instant from a service, shown in the mall's time zone."""
    if not value:
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = console.settings.business_utc_offset
    local = moment.astimezone(timezone(offset))
    hours = int(offset / timedelta(hours=1))
    return f"{local:%Y-%m-%d %H:%M} (UTC{hours:+d})"


WORDS = {  # the distributor centre's words for the services' states
    "Q": {"applied": "待添加客服", "assessing": "考核中", "qualified": "分销员",
          "failed": "考核未通过", "revoked": "资格已取消"},
    "C": {"held": "考核中冻结", "pending": "待确认收货", "frozen": "售后保护期",
          "settled": "已结算", "reversed": "已追回", "voided": "已失效"},
    "W": {"requested": "待审核", "approved": "打款中", "paid": "已到账", "rejected": "已驳回",
          "failed": "打款失败"},
}  # fmt: skip


def make_templates(console_settings: ConsoleSettings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters["yuan"] = lambda fen: "—" if fen is None else format_cny(int(fen))
    env.filters["bps"] = lambda bps: "—" if bps is None else f"{int(bps) / 100:g} %"
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True)
    env.filters["quote"] = lambda value: quote(str(value), safe="")
    env.globals.update(WORDS)
    return templates


def render(
    request: Request,
    template: str,
    who: SignedIn | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    console = console_of(request)
    flash = read_flash(request.cookies.get(FLASH_COOKIE))
    context.setdefault("error", None)
    response = console.templates.TemplateResponse(
        request,
        template,
        {
            "who": who,
            "flash": flash,
            "time": lambda value: mall_time(console, value),
            **context,
        },
        status_code=status_code,
    )
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def done(url: str, message: str, *, ok: bool = True) -> Response:
    """After a form: back to `url` (303), the outcome shown once there."""
    response = RedirectResponse(url, status_code=303)
    payload = json.dumps({"kind": "ok" if ok else "error", "text": message[:1000]})
    value = base64.urlsafe_b64encode(payload.encode()).decode()
    response.set_cookie(FLASH_COOKIE, value, max_age=60, path="/", httponly=True, samesite="strict")
    return response


def read_flash(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    try:
        flash = json.loads(base64.urlsafe_b64decode(value.encode()))
        return {"kind": str(flash["kind"]), "text": str(flash["text"])}
    except (ValueError, KeyError, TypeError):
        return None


def new_pre_anchor() -> str:
    return secrets.token_urlsafe(24)
