"""One error shape for every HTTP answer that is not a success, the framework's own included:

    {"error": {"code": "<machine-readable>", "message": "<plain words>"}}

`install_error_handlers` maps FastAPI/Starlette's errors (unknown path, wrong method, a body
that is not JSON or nests too deep, validation) and unexpected exceptions onto it;
`BodyLimit` refuses a request body over `FX_HTTP_MAX_BODY_BYTES` with 413 before anything
parses it. The codes are listed in `ERROR_CODES` (and the README).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

ERROR_CODES: Mapping[str, str] = {
    "idempotency_key_required": "400: POST /v1/withdrawals without `Idempotency-Key`",
    "unauthenticated": "401: no `Authorization: Bearer <JWT>` header",
    "invalid_token": "401: the token is malformed, badly signed, for another issuer or "
    "audience, lacks `exp`/`sub`/`role`, or names an unknown key",
    "token_expired": "401: the token's `exp` has passed (beyond the leeway)",
    "invalid_signature": "401: the webhook's HMAC signature is missing or wrong",
    "stale_timestamp": "401: the webhook was signed more than 5 minutes from now",
    "forbidden": "403: the token's role may not do this, or a distributor asked for another "
    "distributor's data",
    "not_found": "404: no such route, or no such resource",
    "method_not_allowed": "405: the path exists with other methods (see the `Allow` header)",
    "conflict": "409: the request does not fit the current state (specific codes below)",
    "version_mismatch": "412: `If-Match` names a plan version that is no longer the latest",
    "payload_too_large": "413: the body is over FX_HTTP_MAX_BODY_BYTES",
    "invalid_request": "422: a parameter or body field is missing or invalid, or the body is "
    "not JSON (malformed, or nested deeper than the parser allows)",
    "if_match_required": "428: a plan edit must name the version it changes (`If-Match`)",
    "internal_error": "500: a bug; the request was not applied (nothing half-written)",
    "auth_unavailable": "503: the signing keys (FX_JWT_JWKS) could not be read",
}


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable, stable (see the README's error codes).")
    message: str = Field(description="What is wrong, in plain words, for a person to read.")


class ErrorBody(BaseModel):
    """Every non-2xx answer has this shape."""

    error: ErrorDetail


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


_STATUS_CODES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
}


NOT_JSON = "the body is not valid JSON (malformed, or nested deeper than the parser allows)"


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    path = request.url.path
    for context in iter_route_contexts(request.app.router.routes):
        regex = getattr(context, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(context, "methods", None) or ())
    return sorted(methods)


def _plain(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where or 'body'}: {error.get('msg', 'invalid')}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            allow = allowed_methods(request)
            headers["Allow"] = ", ".join(allow)
            message = f"{request.method} is not allowed here; allowed: {', '.join(allow)}"
        elif exc.status_code == 400:  # FastAPI: the JSON parser failed (e.g. nested too deep)
            return error_response(422, "invalid_request", f"body: {NOT_JSON}")
        return error_response(exc.status_code, code, message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(422, "invalid_request", f"body: {NOT_JSON}")
        return error_response(422, "invalid_request", "; ".join(_plain(e) for e in errors))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "an unexpected error; nothing was applied")


class BodyLimit:
    """Refuses a body over `limit` bytes with 413 (by Content-Length, or while it streams),
    before the app reads any of it; a body within the limit is handed on unchanged."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is over the limit of {self.limit} bytes"
        response = error_response(413, "payload_too_large", message, {"Connection": "close"})
        await response(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
