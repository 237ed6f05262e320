"""Tokens: expiry, issuer and audience, the leeway, HS256 secrets, RS256/ES256 from a JWKS
file or URL (cached, rotated by kid), roles, and plain-words refusals."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fx_common.auth import ConfigError, TokenVerifier
from fx_common.settings import DEV_JWT_SECRET, ServiceSettings

if TYPE_CHECKING:
    from conftest import Bearer, MakeClient

SECRET = "fx-common-http-tests-secret-of-32-bytes"
INTERNALS = ("pydantic", "input_value", "type=", "Traceback", "validation error")


def refusal(response: Any) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    message = body["error"]["message"]
    assert not any(word in message for word in INTERNALS), message
    return response.status_code, body["error"]["code"], message


def hs256(claims: dict[str, Any], secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm='HS256')}"}


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "d-1", "role": "distributor", "exp": int(time.time()) + 600, **extra}


# ── expiry, issuer, audience, leeway ───────────────────────────────────────────────────


def test_no_token_is_401_with_a_challenge(make_client: MakeClient) -> None:
    client = make_client()
    response = client.get("/v1/thing")
    assert refusal(response)[:2] == (401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    basic = client.get("/v1/thing", headers={"Authorization": "Basic ZDox"})
    assert refusal(basic)[:2] == (401, "unauthenticated")


def test_a_token_without_exp_is_refused(make_client: MakeClient) -> None:
    client = make_client()
    forever = {"sub": "d-1", "role": "distributor"}
    status, code, message = refusal(client.get("/v1/thing", headers=hs256(forever)))
    assert (status, code) == (401, "invalid_token")
    assert "`exp`" in message and "must expire" in message


def test_expiry_with_a_small_leeway(make_client: MakeClient) -> None:
    client = make_client(jwt_leeway_s=30)
    now = int(time.time())
    just = client.get("/v1/thing", headers=hs256(claims(exp=now - 10)))
    assert just.status_code == 200, just.text
    expired = client.get("/v1/thing", headers=hs256(claims(exp=now - 60)))
    assert refusal(expired)[:2] == (401, "token_expired")


def test_issuer_and_audience_are_checked_when_configured(make_client: MakeClient) -> None:
    client = make_client(jwt_issuer="https://id.mall.example", jwt_audience="fenxiao")
    right = claims(iss="https://id.mall.example", aud="fenxiao")
    assert client.get("/v1/thing", headers=hs256(right)).status_code == 200
    for wrong, says in [
        ({**right, "aud": "another-app"}, "another audience"),
        ({**right, "iss": "https://evil.example"}, "another issuer"),
        ({k: v for k, v in right.items() if k != "aud"}, "no `aud` claim"),
        ({k: v for k, v in right.items() if k != "iss"}, "no `iss` claim"),
    ]:
        status, code, message = refusal(client.get("/v1/thing", headers=hs256(wrong)))
        assert (status, code) == (401, "invalid_token") and says in message, message


def test_without_configuration_iss_and_aud_are_not_required(make_client: MakeClient) -> None:
    client = make_client()
    token = hs256(claims(iss="anyone", aud="anything"))
    assert client.get("/v1/thing", headers=token).status_code == 200


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("not-a-jwt", "not a well-formed JWT"),
        (jwt.encode(claims(), "another-secret-that-is-32-bytes-long!", "HS256"), "signature"),
        (jwt.encode(claims(), "", "none"), "none are not accepted"),
        (jwt.encode(claims(role="admin"), SECRET, "HS256"), "`role` must be one of"),
        (jwt.encode(claims(role=None), SECRET, "HS256"), "`role` must be one of"),
        (jwt.encode(claims(sub=None), SECRET, "HS256"), "no `sub` claim"),
        (jwt.encode(claims(sub=5), SECRET, "HS256"), "malformed"),
        (jwt.encode(claims(nbf=int(time.time()) + 3600), SECRET, "HS256"), "not valid yet"),
    ],
)
def test_bad_tokens_are_refused_in_plain_words(
    make_client: MakeClient, token: str, says: str
) -> None:
    response = make_client().get("/v1/thing", headers={"Authorization": f"Bearer {token}"})
    status, code, message = refusal(response)
    assert (status, code) == (401, "invalid_token") and says in message, message


# ── roles ──────────────────────────────────────────────────────────────────────────────


def test_roles_and_own_data(make_client: MakeClient, bearer: Bearer) -> None:
    client = make_client()
    mall = bearer("mall-backend", "mall")
    assert client.get("/v1/checkout/u-9", headers=mall).json()["role"] == "mall"
    status, code, message = refusal(client.get("/v1/own/u-9", headers=mall))
    assert (status, code) == (403, "forbidden")
    assert "distributor or ops" in message and "mall" in message
    assert refusal(client.put("/v1/thing", json={"name": "x"}, headers=mall))[0] == 403
    mine = bearer("d-1", "distributor")
    assert client.get("/v1/own/d-1", headers=mine).status_code == 200
    assert refusal(client.get("/v1/own/d-2", headers=mine))[:2] == (403, "forbidden")
    ops = bearer("ops-1", "ops")
    assert client.get("/v1/own/d-2", headers=ops).status_code == 200
    assert client.put("/v1/thing", json={"name": "x"}, headers=ops).json() == {"thing": "x"}


# ── HS256 secrets by environment ──────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("env", "secret", "refused"),
    [
        ("production", "short-secret", "at least 32"),
        ("production", DEV_JWT_SECRET, "built-in"),
        ("staging", "x" * 31, "at least 32"),
        ("production", "x" * 32, None),
        ("dev", "short", None),
        ("test", DEV_JWT_SECRET, None),
    ],
)
def test_hs256_secret_rules(env: str, secret: str, refused: str | None) -> None:
    settings = ServiceSettings(env=env, jwt_secret=secret)
    if refused is None:
        assert TokenVerifier(settings).secret == secret
    else:
        with pytest.raises(ConfigError, match=refused):
            TokenVerifier(settings)


def test_production_is_the_default_environment() -> None:
    assert ServiceSettings().env == "production"
    with pytest.raises(ConfigError):
        TokenVerifier(ServiceSettings())


# ── asymmetric tokens from a JWKS ─────────────────────────────────────────────────────


class Signer:
    """A key of the mall's identity service."""

    def __init__(self, kid: str, alg: str) -> None:
        self.kid, self.alg = kid, alg
        if alg == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            public = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        self.jwk = {**public, "kid": kid, "use": "sig", "alg": alg}

    def header(self, **extra: Any) -> dict[str, str]:
        token = jwt.encode(
            {**claims(), **extra}, self.private, algorithm=self.alg, headers={"kid": self.kid}
        )
        return {"Authorization": f"Bearer {token}"}


def write_jwks(path: Path, *signers: Signer) -> None:
    path.write_text(json.dumps({"keys": [s.jwk for s in signers]}))


def test_rs256_and_es256_from_a_jwks_file_rotated_by_kid(
    make_client: MakeClient, tmp_path: Path
) -> None:
    rsa_key, ec_key = Signer("2026-01", "RS256"), Signer("ec-1", "ES256")
    jwks = tmp_path / "jwks.json"
    write_jwks(jwks, rsa_key, ec_key)
    client = make_client(jwt_jwks=str(jwks), jwt_jwks_refresh_s=0.05)
    assert client.get("/v1/thing", headers=rsa_key.header()).status_code == 200
    assert client.get("/v1/thing", headers=ec_key.header()).status_code == 200
    hs = client.get("/v1/thing", headers=hs256(claims()))
    assert refusal(hs)[2] == "tokens signed with HS256 are not accepted here (only RS256, ES256)"
    # Rotation: a new key appears (found by its kid), the old one is withdrawn.
    new_key = Signer("2026-07", "RS256")
    unknown = refusal(client.get("/v1/thing", headers=new_key.header()))
    assert unknown[:2] == (401, "invalid_token") and "'2026-07'" in unknown[2]
    write_jwks(jwks, new_key, ec_key)
    time.sleep(0.1)
    assert client.get("/v1/thing", headers=new_key.header()).status_code == 200
    assert refusal(client.get("/v1/thing", headers=rsa_key.header()))[0] == 401


def test_a_key_is_used_only_for_its_algorithm(make_client: MakeClient, tmp_path: Path) -> None:
    ec_key = Signer("ec-1", "ES256")
    jwks = tmp_path / "jwks.json"
    write_jwks(jwks, ec_key)
    client = make_client(jwt_jwks=str(jwks))
    impostor = Signer("ec-1", "RS256")  # same kid, another algorithm and key
    status, _, message = refusal(client.get("/v1/thing", headers=impostor.header()))
    assert status == 401 and "is for ES256" in message


class JwksServer:
    def __init__(self, *signers: Signer) -> None:
        self.keys = {"keys": [s.jwk for s in signers]}
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps(owner.keys).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    key = Signer("k-1", "ES256")
    server = JwksServer(key)
    server.signer = key  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_keys_from_a_url_are_cached(make_client: MakeClient, jwks_server: JwksServer) -> None:
    client = make_client(jwt_jwks=jwks_server.url, jwt_jwks_refresh_s=300)
    signer: Signer = jwks_server.signer  # type: ignore[attr-defined]
    for _ in range(5):
        assert client.get("/v1/thing", headers=signer.header()).status_code == 200
    assert jwks_server.fetches == 1
    # Made-up kids do not make the service fetch again and again (at most once per 30 s).
    for n in range(5):
        forged = Signer(f"forged-{n}", "ES256")
        assert client.get("/v1/thing", headers=forged.header()).status_code == 401
    assert jwks_server.fetches == 1


def test_an_unreachable_key_set_is_503_not_a_pass(make_client: MakeClient) -> None:
    client = make_client(jwt_jwks="http://127.0.0.1:9/jwks.json")
    response = client.get("/v1/thing", headers=Signer("k", "RS256").header())
    assert refusal(response)[:2] == (503, "auth_unavailable")
