"""Bearer tokens and roles.

A token is a JWT with `sub` (who), `role` (`distributor`, `ops` or `mall`) and `exp`; it is
refused without `exp`, after it (beyond `FX_JWT_LEEWAY_S`), or when `iss` / `aud` differ
from `FX_JWT_ISSUER` / `FX_JWT_AUDIENCE` (checked when set). Two ways to sign:
- `FX_JWT_JWKS` set: RS256 or ES256, verified with the key its `kid` names in the JWKS
  (the mall's identity service signs; the services only verify). HS256 is then refused.
- otherwise HS256 with `FX_JWT_SECRET` (local runs), which must be at least 32 bytes and not
  the built-in value unless `FX_ENV` is `dev` or `test`.

Roles: `distributor` (a mall user: its own data only), `ops` (the operators: everything),
`mall` (the mall's backend: the reads checkout and product pages need, nothing that moves
money or changes rules). A route states who may call it with one of the dependencies below
(`Auth`, `Ops`, …); a distributor's own-data check is `require_reader`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fx_common.errors import ApiError
from fx_common.jwks import ASYMMETRIC, JwksKeys, KeyUnavailable
from fx_common.settings import DEV_JWT_SECRET, ServiceSettings

MIN_SECRET_BYTES = 32
LENIENT_ENVS = ("dev", "test")


class Role(StrEnum):
    DISTRIBUTOR = "distributor"
    OPS = "ops"
    MALL = "mall"


class Principal(BaseModel):
    """Who calls: the token's subject and role."""

    model_config = ConfigDict(frozen=True)
    sub: str = Field(min_length=1)
    role: Role

    @property
    def subject(self) -> str:
        return self.sub

    def may_read(self, user_id: str) -> bool:
        """Ops and the mall read anyone's data (on the routes open to them); a distributor
        only its own."""
        return self.role is not Role.DISTRIBUTOR or self.sub == user_id


class ConfigError(ValueError):
    """The token settings cannot be used (the service refuses to start)."""


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, {"WWW-Authenticate": 'Bearer error="invalid_token"'})


class TokenVerifier:
    def __init__(self, settings: ServiceSettings) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.leeway = settings.jwt_leeway_s
        self.jwks: JwksKeys | None = None
        self.secret: str | None = None
        if settings.jwt_jwks:
            refresh = settings.jwt_jwks_refresh_s
            self.jwks = JwksKeys(settings.jwt_jwks, refresh, min(30.0, refresh))
        else:
            self.secret = checked_secret(settings)

    @property
    def algorithms(self) -> tuple[str, ...]:
        return ASYMMETRIC if self.jwks is not None else ("HS256",)

    def _key(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _unauthorized("invalid_token", "the token is not a well-formed JWT") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise _unauthorized(
                "invalid_token",
                f"tokens signed with {alg} are not accepted here (only "
                f"{', '.join(self.algorithms)})",
            )
        if self.jwks is None:
            return self.secret, alg
        kid = header.get("kid")
        try:
            return self.jwks.key(kid if isinstance(kid, str) else None, alg), alg
        except KeyUnavailable as exc:
            if exc.source_down:
                raise ApiError(503, "auth_unavailable", str(exc)) from exc
            raise _unauthorized("invalid_token", str(exc)) from exc

    def verify(self, token: str) -> Principal:
        key, alg = self._key(token)
        required = ["exp", "sub"]
        required += [
            claim for claim, wanted in (("iss", self.issuer), ("aud", self.audience)) if wanted
        ]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": required, "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise _token_refusal(exc) from exc
        try:
            return Principal(sub=claims["sub"], role=claims.get("role"))
        except ValidationError as exc:
            raise _unauthorized(
                "invalid_token",
                "the token's `role` must be one of distributor, ops, mall and its `sub` a "
                "non-empty string",
            ) from exc


def _token_refusal(exc: jwt.PyJWTError) -> ApiError:
    match exc:
        case jwt.ExpiredSignatureError():
            return _unauthorized("token_expired", "the token has expired; get a new one")
        case jwt.MissingRequiredClaimError():
            why = " (tokens must expire)" if exc.claim == "exp" else ""
            return _unauthorized("invalid_token", f"the token has no `{exc.claim}` claim{why}")
        case jwt.InvalidAudienceError():
            return _unauthorized("invalid_token", "the token was issued for another audience")
        case jwt.InvalidIssuerError():
            return _unauthorized("invalid_token", "the token was issued by another issuer")
        case jwt.InvalidSignatureError():
            return _unauthorized("invalid_token", "the token's signature does not verify")
        case jwt.ImmatureSignatureError():
            return _unauthorized("invalid_token", "the token is not valid yet (`nbf`/`iat`)")
        case _:
            return _unauthorized("invalid_token", "the token is malformed or its claims invalid")


def checked_secret(settings: ServiceSettings) -> str:
    secret = settings.jwt_secret
    if settings.env in LENIENT_ENVS:
        return secret
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"FX_JWT_SECRET is {len(secret.encode())} bytes; HS256 needs at least "
            f"{MIN_SECRET_BYTES} outside FX_ENV=dev|test (or set FX_JWT_JWKS)"
        )
    if secret == DEV_JWT_SECRET:
        raise ConfigError(
            "FX_JWT_SECRET is the built-in development value: set your own (or FX_JWT_JWKS), "
            "or FX_ENV=dev|test for a local run"
        )
    return secret


BEARER = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A JWT with `sub`, `role` (distributor, ops or mall) and `exp`.",
)


def authorize(*roles: Role) -> Callable[..., Principal]:
    """A dependency that lets in a valid token of one of `roles` (401 / 403 otherwise)."""
    allowed = tuple(roles)

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        if credentials is None:
            raise _unauthorized("unauthenticated", "send `Authorization: Bearer <JWT>`")
        verifier: TokenVerifier = request.app.state.verifier
        who = verifier.verify(credentials.credentials)
        if who.role not in allowed:
            raise ApiError(
                403,
                "forbidden",
                f"this needs the {' or '.join(allowed)} role; the token's role is {who.role}",
            )
        return who

    dependency.fx_roles = allowed  # type: ignore[attr-defined]
    return dependency


def roles_of(call: object) -> tuple[Role, ...] | None:
    roles = getattr(call, "fx_roles", None)
    return tuple(roles) if roles is not None else None


# A distributor's own data (with `require_reader`) and ops. The default for a new route.
Auth = Annotated[Principal, Depends(authorize(Role.DISTRIBUTOR, Role.OPS))]
# Checkout and product-page reads: also the mall's backend.
MallReader = Annotated[Principal, Depends(authorize(Role.DISTRIBUTOR, Role.OPS, Role.MALL))]
Ops = Annotated[Principal, Depends(authorize(Role.OPS))]
Distributor = Annotated[Principal, Depends(authorize(Role.DISTRIBUTOR))]


def require_reader(who: Principal, user_id: str) -> None:
    if not who.may_read(user_id):
        raise ApiError(403, "forbidden", "a distributor may read only its own data")


def require_ops(who: Principal) -> None:
    if who.role is not Role.OPS:
        raise ApiError(403, "forbidden", "this action needs the ops role")


def issue_token(
    secret: str,
    sub: str,
    role: str,
    *,
    ttl_s: float = 3600,
    issuer: str | None = None,
    audience: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """An HS256 token for local runs, tests and tools (expires after `ttl_s`)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + int(ttl_s)}
    claims.update({k: v for k, v in (("iss", issuer), ("aud", audience)) if v is not None})
    claims.update(extra or {})
    return jwt.encode(claims, secret, algorithm="HS256")


def role_names(roles: Iterable[Role]) -> str:
    return ", ".join(role.value for role in roles)
