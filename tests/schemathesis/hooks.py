"""schemathesis hooks (loaded by `SCHEMATHESIS_HOOKS=tests.schemathesis.hooks`): a check that
a refused request (any 4xx) wrote nothing to the service's store.

The CLI sends one request at a time (`--workers 1`) and the service runs without its Kafka
lifespan, so nothing else writes: the store's digest after a refused request must equal the
digest after the request before it. `FX_SCHEMATHESIS_STORE_URL` names the store.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import schemathesis
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

_engine: Engine | None = None
_last: str | None = None


def store_digest() -> str:
    global _engine
    if _engine is None:
        _engine = create_engine(os.environ["FX_SCHEMATHESIS_STORE_URL"])
    digest = hashlib.sha256()
    with _engine.connect() as connection:
        for table in sorted(inspect(connection).get_table_names()):
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
            digest.update(f"{table}:{sorted(map(repr, rows))}".encode())
    return digest.hexdigest()


@schemathesis.check
def nothing_written_when_refused(ctx: Any, response: Any, case: Any) -> bool | None:
    global _last
    now = store_digest()
    before, _last = _last, now
    if before is not None and 400 <= response.status_code < 500 and now != before:
        raise AssertionError(
            f"{case.method} {case.formatted_path} was refused with {response.status_code} "
            "but changed the store"
        )
    return None
