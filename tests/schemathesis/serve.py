"""One service's app on a free local port, without its Kafka lifespan, for schemathesis."""

from __future__ import annotations

import importlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from fx_common import migrations
from fx_common.http import create_app
from fx_common.runtime import ServiceRuntime

SECRET = "schemathesis-run-secret-at-least-32-bytes"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running(
    service: str,
    store_url: str,
    seed: Callable[[ServiceRuntime], None] | None = None,
    **settings: Any,
) -> Iterator[str]:
    """The service's HTTP API on 127.0.0.1 (its base URL), its store migrated and `seed`ed."""
    module = importlib.import_module(f"{service.replace('-', '_')}.app")
    # A namespace of its own: what the run writes to Redis (the leaderboards it rebuilds)
    # never touches a cluster's keys on the same Redis.
    namespace = f"schemathesis-{uuid.uuid4().hex[:8]}."
    values = {
        "database_url": store_url, "jwt_secret": SECRET, "clock": "simulated",
        "topic_namespace": namespace, **settings,
    }  # fmt: skip
    configured = module.SPEC.settings_cls(**values)
    spec = module.spec_for(configured)
    runtime = ServiceRuntime(spec, configured)
    assert spec.migrations is not None
    migrations.upgrade(runtime.engine, spec.migrations)
    if seed is not None:
        seed(runtime)
    port = free_port()
    config = uvicorn.Config(
        create_app(spec, runtime), host="127.0.0.1", port=port, lifespan="off", log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.engine.dispose()


if __name__ == "__main__":  # manual runs: python -m tests.schemathesis.serve commission DIR
    import sys

    name, directory = sys.argv[1], Path(sys.argv[2])
    with running(name, f"sqlite:///{directory / (name + '.db')}") as url:
        print(url, flush=True)
        while True:
            time.sleep(3600)
