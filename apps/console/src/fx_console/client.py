"""The four services' HTTP APIs, called with the signed-in user's own token.

The console decides nothing: each service checks the token and the role, and its refusal
(`{"error": {"code", "message"}}`) reaches the page as an `ApiFailure` in plain words."""

from __future__ import annotations

from typing import Any

import httpx

SERVICE_NAMES = {
    "referral-binding": "the referral-binding service",
    "qualification": "the qualification service",
    "commission": "the commission service",
    "payout": "the payout service",
}


class ApiFailure(Exception):
    """A service refused (4xx/5xx) or could not be reached (status 502)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Services:
    """One HTTP client per service; `transports` lets tests serve the services in-process."""

    def __init__(
        self,
        urls: dict[str, str],
        transports: dict[str, httpx.AsyncBaseTransport] | None = None,
        timeout: float = 10.0,
    ) -> None:
        transports = transports or {}
        self.clients = {
            name: httpx.AsyncClient(base_url=url, timeout=timeout, transport=transports.get(name))
            for name, url in urls.items()
        }

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        token: str | None,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        try:
            response = await self.clients[service].request(
                method, path, json=json, params=params, headers=sent
            )
        except httpx.HTTPError as exc:
            raise ApiFailure(
                502, "unreachable", f"{SERVICE_NAMES[service]} cannot be reached right now ({exc})"
            ) from exc
        if response.status_code >= 400:
            raise failure(service, response)
        return response

    async def get(self, service: str, path: str, token: str | None, **kw: Any) -> Any:
        return (await self.call(service, "GET", path, token, **kw)).json()

    async def post(self, service: str, path: str, token: str, **kw: Any) -> Any:
        return (await self.call(service, "POST", path, token, **kw)).json()


def failure(service: str, response: httpx.Response) -> ApiFailure:
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "unexpected_answer", response.text[:200] or response.reason_phrase
    return ApiFailure(response.status_code, code, f"{SERVICE_NAMES[service]}: {message}")
