"""Signing keys of the mall's identity service: a JWKS (RFC 7517) file or http(s) URL.

Keys are cached and chosen by the token's `kid`. The set is read again when the cache is
older than `refresh_s`, and when a token names a `kid` the cache does not hold (a rotated-in
key) — at most once per `min_refetch_s`, so tokens with made-up `kid`s cannot make the
service hammer the identity service. If a refresh fails, the keys already cached are kept.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError

log = logging.getLogger(__name__)

ASYMMETRIC = ("RS256", "ES256")


class KeyUnavailable(Exception):
    """No key could be found for the token (unknown `kid`, or the set cannot be read)."""

    def __init__(self, message: str, *, source_down: bool = False) -> None:
        super().__init__(message)
        self.source_down = source_down


class JwksKeys:
    def __init__(self, location: str, refresh_s: float = 300.0, min_refetch_s: float = 30.0):
        self.location = location
        self.refresh_s = refresh_s
        self.min_refetch_s = min_refetch_s
        self._keys: dict[str, PyJWK] = {}
        self._loaded_at: float | None = None
        self._tried_at = float("-inf")
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        if self.location.startswith(("http://", "https://")):
            request = urllib.request.Request(self.location, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                data: dict[str, Any] = json.loads(response.read())
                return data
        parsed: dict[str, Any] = json.loads(Path(self.location).read_text())
        return parsed

    def _load(self) -> None:
        self._tried_at = time.monotonic()
        try:
            keys = PyJWKSet.from_dict(self._read()).keys
        except (OSError, ValueError, PyJWKError, PyJWKSetError) as exc:
            log.warning("cannot read the JWKS at %s: %s", self.location, exc)
            return
        self._keys = {key.key_id or "": key for key in keys}
        self._loaded_at = self._tried_at

    def key(self, kid: str | None, alg: str) -> PyJWK:
        """The key the token names, checked to be for the token's algorithm."""
        with self._lock:
            now = time.monotonic()
            stale = self._loaded_at is None or now - self._loaded_at > self.refresh_s
            unknown = kid is not None and kid not in self._keys
            if (stale or unknown) and now - self._tried_at >= self.min_refetch_s:
                self._load()
            if self._loaded_at is None:
                raise KeyUnavailable(
                    f"the signing keys ({self.location}) cannot be read", source_down=True
                )
            keys = dict(self._keys)
        if kid is None:
            if len(keys) != 1:
                raise KeyUnavailable("the token has no `kid` and the key set has several keys")
            found = next(iter(keys.values()))
        elif kid in keys:
            found = keys[kid]
        else:
            raise KeyUnavailable(f"no signing key with kid {kid!r} in the key set")
        if found.algorithm_name != alg:
            raise KeyUnavailable(
                f"the key {kid!r} is for {found.algorithm_name}, the token says {alg}"
            )
        return found
