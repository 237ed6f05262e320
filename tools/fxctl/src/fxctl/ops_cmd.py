"""`fxctl ops`: the ops console's actions from a terminal, over the services' HTTP APIs.

Each verb sends one request with an ops token: `--token` / FX_OPS_TOKEN (one from the mall's
identity provider), or on a local cluster one signed with `--secret` / FX_JWT_SECRET for
`--operator` (the id the services record, e.g. a plan version's `created_by`). A refusal is
printed in the service's words and exits 1: nothing was changed."""

from __future__ import annotations

import getpass
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from fx_common.auth import issue_token
from fxctl.output import console, emit_json, fail
from fxctl.service_clocks import endpoints

app = typer.Typer(help="Ops actions over the services' HTTP APIs.", no_args_is_help=True)
REVIEWS = ("approve", "reject", "mark-paid", "mark-failed")


@dataclass(frozen=True)
class Ops:
    urls: dict[str, str]
    token: str

    def call(self, service: str, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> Any:  # fmt: skip
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        url = self.urls[service].rstrip("/") + path
        request = urllib.request.Request(url, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=15) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            fail(f"{service} refused ({exc.code}), nothing changed: {_message(exc)}", code=1)
        except (urllib.error.URLError, OSError) as exc:
            fail(f"{service} cannot be reached at {url}: {exc}", code=1)


def _message(exc: urllib.error.HTTPError) -> str:
    raw = exc.read()
    try:
        error = json.loads(raw)["error"]
        return f"{error['message']} ({error['code']})"
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace")[:300]


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@app.callback()
def main(
    ctx: typer.Context,
    token: Annotated[
        str | None, typer.Option(envvar="FX_OPS_TOKEN", help="An ops token (bearer JWT).")
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(envvar="FX_JWT_SECRET", help="Without --token: sign one (local clusters)."),
    ] = None,
    operator: Annotated[
        str, typer.Option(help="Without --token: the ops user id to sign for.")
    ] = f"ops-{getpass.getuser()}",
    service: Annotated[
        list[str] | None,
        typer.Option("--service", help="SERVICE=http://host:port (default 8101-8104)."),
    ] = None,
) -> None:
    if token is None:
        if not secret:
            fail("give an ops token (--token / FX_OPS_TOKEN) or, on a local cluster, "
                 "--secret / FX_JWT_SECRET to sign one")  # fmt: skip
        token = issue_token(secret, operator, "ops", ttl_s=300)
    ctx.obj = Ops(endpoints(service), token)


def _ops(ctx: typer.Context) -> Ops:
    ops = ctx.obj
    assert isinstance(ops, Ops)
    return ops


@app.command()
def candidates(ctx: typer.Context, status: str = "applied", as_json: bool = False) -> None:
    """Users by qualification status (default: waiting for contact confirmation)."""
    page = _ops(ctx).call("qualification", "GET", f"/v1/candidates?status={_q(status)}")
    if as_json:
        emit_json(page)
        return
    for c in page["items"]:
        console().print(f"{c['user_id']}  {c['status']}  {c['qualifying_orders']}/"
                        f"{c['required_orders']}  wechat={c['wechat_id'] or '-'}")  # fmt: skip


@app.command()
def confirm(ctx: typer.Context, user: str) -> None:
    """Confirm a candidate's WeChat contact: its assessment starts."""
    view = _ops(ctx).call("qualification", "POST", f"/v1/applications/{_q(user)}/contact-confirmed")
    console().print(f"{user}: {view['status']} ({view['progress']})")


@app.command()
def revoke(ctx: typer.Context, user: str,
           reason: Annotated[str, typer.Option(help="Why (recorded).")]) -> None:  # fmt: skip
    """Revoke a distributor (its unsettled commission is voided)."""
    view = _ops(ctx).call("qualification", "POST", f"/v1/distributors/{_q(user)}/revoke",
                          {"reason": reason})  # fmt: skip
    console().print(f"{user}: {view['status']}")


@app.command()
def appoint(ctx: typer.Context, user: str,
            reason: Annotated[str, typer.Option(help="Why (recorded).")]) -> None:  # fmt: skip
    """Appoint a user a distributor (FX_QUALIFICATION_MODE=appointed; refused otherwise)."""
    view = _ops(ctx).call("qualification", "POST", f"/v1/distributors/{_q(user)}/appoint",
                          {"reason": reason})  # fmt: skip
    console().print(f"{user}: {view['status']}")


@app.command()
def withdrawals(ctx: typer.Context, status: str = "requested", as_json: bool = False) -> None:
    """Withdrawals by status (default: waiting for review), newest first."""
    found = _ops(ctx).call("payout", "GET", f"/v1/withdrawals?status={_q(status)}")
    if as_json:
        emit_json(found)
        return
    for w in found["withdrawals"]:
        console().print(f"{w['withdrawal_id']}  {w['distributor_id']}  {w['amount_fen']} fen  "
                        f"{w['method']}  {w['status']}")  # fmt: skip


@app.command()
def review(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="approve, reject, mark-paid or mark-failed")],
    withdrawal: str,
    reason: Annotated[str | None, typer.Option(help="reject / mark-failed: why")] = None,
    ref: Annotated[str | None, typer.Option(help="mark-paid: the transfer reference")] = None,
) -> None:
    """Review a withdrawal: approve, reject --reason, mark-paid --ref, mark-failed --reason."""
    if action not in REVIEWS:
        fail(f"the action is one of {', '.join(REVIEWS)}, not {action!r}")
    needs = {"reject": ("reason", reason), "mark-failed": ("reason", reason),
             "mark-paid": ("transfer_ref", ref)}.get(action)  # fmt: skip
    body = None
    if needs is not None:
        if not needs[1]:
            fail(f"{action} needs --{'ref' if needs[0] == 'transfer_ref' else 'reason'}")
        body = {needs[0]: needs[1]}
    done = _ops(ctx).call("payout", "POST", f"/v1/withdrawals/{_q(withdrawal)}/{action}", body)
    console().print(f"{withdrawal}: {done['status']}")


@app.command()
def plan(ctx: typer.Context, as_json: bool = False) -> None:
    """The rate plan in force and the latest version (the one an edit must name)."""
    versions = _ops(ctx).call("commission", "GET", "/v1/plan/versions")
    if as_json:
        emit_json(versions)
        return
    in_force = next(v for v in versions["versions"] if v["version"] == versions["in_force"])
    out = console()
    out.print(f"in force: version {versions['in_force']}, default {in_force['default_rate_bps']}"
              f" bps; latest: version {versions['latest']} (name it with --version)")  # fmt: skip
    for scope in ("skus", "categories"):
        for key, rule in in_force[scope].items():
            out.print(f"  {scope[:-1] if scope == 'skus' else 'category'} {key}: {rule}")


@app.command()
def override(
    ctx: typer.Context,
    scope: Annotated[str, typer.Argument(help="sku or category")],
    key: str,
    version: Annotated[int, typer.Option(help="The latest version you read (If-Match).")],
    rate_bps: Annotated[int | None, typer.Option(help="A rate, 1000 = 10 %.")] = None,
    fen_per_unit: Annotated[int | None, typer.Option(help="A fixed fen per unit.")] = None,
    remove: Annotated[bool, typer.Option(help="Remove the override.")] = False,
) -> None:
    """Add, change or remove one override; refused (412) if another edit made a newer version."""
    if scope not in ("sku", "category"):
        fail(f"the scope is sku or category, not {scope!r}")
    given = [v for v in (rate_bps, fen_per_unit) if v is not None]
    if remove == bool(given) or len(given) > 1:
        fail("give exactly one of --rate-bps, --fen-per-unit or --remove")
    path = f"/v1/plan/{'skus' if scope == 'sku' else 'categories'}/{_q(key)}"
    body = None if remove else ({"rate_bps": rate_bps} if rate_bps is not None
                                else {"fen_per_unit": fen_per_unit})  # fmt: skip
    created = _ops(ctx).call("commission", "DELETE" if remove else "PUT", path, body,
                             {"If-Match": f'"{version}"'})  # fmt: skip
    console().print(f"plan version {created['version']} created (from {version})")


BOARDS = {"earned": "commission", "customers": "referral-binding"}


@app.command("leaderboard-rebuild")
def leaderboard_rebuild(
    ctx: typer.Context,
    board: Annotated[
        list[str] | None, typer.Option("--board", help="earned or customers (default: both).")
    ] = None,
    as_json: bool = False,
) -> None:
    """Rebuild leaderboards from the services' stores now (after a Redis flush, a restored
    store or a replay); the services also do it themselves when they find a board wrong."""
    chosen = board or list(BOARDS)
    unknown = [b for b in chosen if b not in BOARDS]
    if unknown:
        fail(f"a board is one of {', '.join(BOARDS)}, not {', '.join(unknown)}")
    done = [_ops(ctx).call(BOARDS[b], "POST", f"/v1/leaderboards/{b}/rebuild") for b in chosen]
    if as_json:
        emit_json(done)
        return
    for answer in done:
        console().print(f"{answer['board']}: {answer['items']} changes, total {answer['total']}, "
                        f"{answer['boards']} period boards, {answer['pending_applied']} applied "
                        f"after the swap")  # fmt: skip
