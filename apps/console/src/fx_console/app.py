"""The console's app: sign-in, the ops pages, the distributor centre, the static files.

fx-console          (FX_HTTP_PORT, default 8105; the services at FX_*_URL)
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from fx_common.auth import ConfigError, TokenVerifier
from fx_common.logs import configure_logging
from fx_console import audit, boards, centre, ops, ops_actions, signin
from fx_console.client import Services
from fx_console.settings import ConsoleSettings
from fx_console.web import HERE, Console, Product, Refused, SignInNeeded, make_templates, render

log = logging.getLogger("fx_console")


def load_catalogue(path: str | None) -> list[Product]:
    source = Path(path) if path else HERE / "catalogue.json"
    items = json.loads(source.read_text(encoding="utf-8"))
    return [
        Product(str(i["sku"]), str(i["name"]), i.get("category"), int(i["price_fen"]))
        for i in items
    ]


def create_app(
    settings: ConsoleSettings | None = None,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The console. Refuses (ConfigError) token settings unfit for FX_ENV, like the services."""
    settings = settings or ConsoleSettings()
    key = settings.console_csrf_key or secrets.token_hex(32)
    console = Console(
        settings=settings,
        verifier=TokenVerifier(settings),
        services=Services(settings.service_urls(), transports),
        templates=make_templates(settings),
        csrf_key=key.encode(),
        catalogue=load_catalogue(settings.console_catalogue),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await console.services.aclose()

    app = FastAPI(title="fenxiao console", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)  # fmt: skip
    app.state.console = console
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in (
        signin.router, ops.router, ops_actions.router, audit.router, centre.router,
        boards.me_router, boards.ops_router,
    ):  # fmt: skip
        app.include_router(router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, exc: SignInNeeded) -> Response:
        if request.method != "GET":
            return render(request, "error.html", None, 401, message=exc.why)
        return RedirectResponse(f"/signin?why={quote(exc.why)}", status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return render(request, "error.html", None, exc.status, message=exc.message)

    return app


def main() -> None:
    settings = ConsoleSettings()
    configure_logging("console", settings.log_level)
    try:
        app = create_app(settings)
    except ConfigError as exc:
        sys.exit(f"fx-console refuses to start: {exc}")
    uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_config=None)
