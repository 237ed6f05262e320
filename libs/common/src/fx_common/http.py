"""The FastAPI side of a service: lifespan that runs the runtime, probes, the clock, metrics,
and the shared HTTP shell: tokens and roles (`fx_common.auth`), one error shape for every
error (`fx_common.errors`) and an OpenAPI document that states them (`fx_common.openapi`)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from types import FrameType
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from fx_common import heap, metrics, tracing
from fx_common.asyncapi import service_document
from fx_common.auth import (
    Auth,
    ConfigError,
    Distributor,
    MallReader,
    Ops,
    Principal,
    Role,
    TokenVerifier,
    issue_token,
    require_ops,
    require_reader,
)
from fx_common.clock import SimulatedClock
from fx_common.errors import ApiError, BodyLimit, install_error_handlers
from fx_common.http_metrics import HttpMetrics
from fx_common.logs import configure_logging
from fx_common.migrations import StoreNotReady
from fx_common.openapi import errors, install_openapi
from fx_common.runtime import ServiceRuntime, ServiceSpec
from fx_common.settings import SERVICE_PORTS

__all__ = [
    "DEFAULT_PORTS",
    "ApiError",
    "Auth",
    "Distributor",
    "MallReader",
    "Ops",
    "Principal",
    "Role",
    "Runtime",
    "create_app",
    "errors",
    "issue_token",
    "require_ops",
    "require_reader",
    "serve",
]

DEFAULT_PORTS = SERVICE_PORTS


class ClockReading(BaseModel):
    """The clock this replica applies to every read, command and rule it runs now."""

    mode: Literal["system", "simulated"] = Field(description="`FX_CLOCK`.")
    now: datetime = Field(description="The replica's now (UTC).")
    unix_seconds: float = Field(description="`now` as unix seconds (= fx_clock_now_seconds).")
    start: datetime | None = Field(
        description="Simulated: `FX_CLOCK_START`, the value before the first `fx.clock.set` "
        "(default 2026-01-01T00:00:00Z). Null for the system clock."
    )
    moves: int = Field(
        description="Simulated: how many `fx.clock.set` events moved this replica's clock "
        "since it started (0: still at `start`). Always 0 for the system clock."
    )


def clock_reading(runtime: ServiceRuntime) -> ClockReading:
    now = runtime.clock.now()
    simulated = runtime.clock if isinstance(runtime.clock, SimulatedClock) else None
    return ClockReading(
        mode="simulated" if simulated is not None else "system",
        now=now,
        unix_seconds=now.timestamp(),
        start=simulated.start if simulated is not None else None,
        moves=simulated.moves if simulated is not None else 0,
    )


def _default_runtime(spec: ServiceSpec) -> ServiceRuntime:
    settings = spec.settings_cls(
        service=spec.name,
        http_port=int(os.environ.get("FX_HTTP_PORT", DEFAULT_PORTS.get(spec.name, 8100))),
    )
    return ServiceRuntime(spec, settings)


def create_app(spec: ServiceSpec, runtime: ServiceRuntime | None = None) -> FastAPI:
    """The service's app. Refuses (ConfigError) token settings unfit for `FX_ENV`."""
    if runtime is None:
        runtime = _default_runtime(spec)
    verifier = TokenVerifier(runtime.settings)
    bound = runtime

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await bound.start()
        try:
            yield
        finally:
            await bound.stop()
            tracing.shutdown()  # export the last spans

    app = FastAPI(
        title=f"fenxiao {spec.name}",
        lifespan=lifespan,
        description='Errors: `{"error": {"code", "message"}}` (see the README). Bodies '
        f"over {runtime.settings.http_max_body_bytes} bytes are refused with 413.",
    )
    app.state.runtime = runtime
    app.state.verifier = verifier
    app.add_middleware(BodyLimit, limit=runtime.settings.http_max_body_bytes)
    app.add_middleware(HttpMetrics, service=spec.name)  # outermost: counts 413s too
    install_error_handlers(app)
    metrics.CLOCK_NOW.labels(spec.name).set_function(lambda: bound.clock.now().timestamp())

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await asyncio.to_thread(bound.ready)
        status = 200 if all(checks.values()) else 503
        clock = clock_reading(bound).model_dump(mode="json")
        return JSONResponse({"ready": status == 200, **checks, "clock": clock}, status_code=status)

    @app.get("/v1/clock", tags=["clock"])
    async def read_clock() -> ClockReading:
        """The clock this replica applies (no token needed). After `fxctl clock set T`, a move
        has reached a service when its `now` is at least T."""
        return clock_reading(bound)

    @app.get("/asyncapi", include_in_schema=False)
    async def asyncapi() -> dict[str, Any]:
        return service_document(spec.name, spec.handler_table(), spec.outputs)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if spec.router is not None:
        app.include_router(spec.router)
    install_openapi(app)
    return app


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(spec: ServiceSpec) -> None:
    """Entry point of a service process: uvicorn with the runtime in the lifespan. SIGTERM
    drains (see `ServiceRuntime.stop`) and exits 0."""
    try:
        app = create_app(spec)
    except ConfigError as exc:
        sys.exit(f"fx-{spec.name} refuses to start: {exc}")
    settings = app.state.runtime.settings
    configure_logging(spec.name, settings.log_level)
    if tracing.configure(spec.name):
        tracing.instrument_app(app)
    # Batches allocate many short-lived objects; frequent young-generation collections cost
    # 15-25 ms pauses per batch. Freeze what startup built and collect less often.
    heap.settle()
    try:
        app.state.runtime.prepare_store()
    except StoreNotReady as exc:
        logging.getLogger(__name__).error("not starting: %s", exc)
        raise SystemExit(2) from exc
    # uvicorn drains on SIGTERM, then re-raises the signal against the handler it found: this
    # one, so a drained process exits 0 rather than being killed by its own signal (-15).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=30,
    )
