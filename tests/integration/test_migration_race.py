"""Two replicas of a service starting at once on one empty Postgres store (FX_MIGRATE=auto):
the store is migrated once. The test holds the migration's advisory lock until both replicas
wait on it, so they really race; then both come up, and only one ran the revisions."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from commission.app import HISTORY
from fx_common import db, migrations
from fx_common.testing import fresh_postgres_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
WAITERS = """
    SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
    WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def test_two_replicas_starting_at_once_migrate_the_store_once(
    bootstrap: str, unique: str, tmp_path: Path
) -> None:
    server = os.environ.get("FX_TEST_POSTGRES_URL")
    assert server, "FX_TEST_POSTGRES_URL is not set: `make test` starts Postgres and sets it"
    with fresh_postgres_database(server) as url:
        holder = create_engine(db.normalise_url(url), isolation_level="AUTOCOMMIT")
        replicas: list[tuple[subprocess.Popen[bytes], int, Path]] = []
        try:
            with holder.connect() as lock:
                lock.execute(
                    text("SELECT pg_advisory_lock(:k)"), {"k": migrations.lock_key(HISTORY)}
                )
                for replica in ("a", "b"):
                    port, log = free_port(), tmp_path / f"commission-{replica}.log"
                    env = {
                        **os.environ,
                        "DATABASE_URL": url,
                        "FX_MIGRATE": "auto",
                        "FX_ENV": "test",
                        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                        "FX_TOPIC_NAMESPACE": f"race-{unique}.",
                        "FX_HTTP_PORT": str(port),
                        "FX_KAFKA_SESSION_TIMEOUT_MS": "6000",
                    }
                    with log.open("wb") as out:
                        proc = subprocess.Popen(
                            [str(REPO / ".venv" / "bin" / "fx-commission")],
                            env=env,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                        )
                    replicas.append((proc, port, log))

                deadline = time.monotonic() + 120
                while lock.execute(text(WAITERS)).scalar_one() < 2:
                    assert all(p.poll() is None for p, _, _ in replicas), "a replica exited"
                    assert time.monotonic() < deadline, "the replicas never both waited"
                    time.sleep(0.2)
                assert not lock.execute(text("SELECT to_regclass('alembic_version')")).scalar()
                lock.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": migrations.lock_key(HISTORY)}
                )

            deadline = time.monotonic() + 180
            for proc, port, log in replicas:
                while not ready(port):
                    assert proc.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, f"not ready: {log.read_text()[-2000:]}"
                    time.sleep(0.5)

            logs = [log.read_text() for _, _, log in replicas]
            assert sum(text_.count("Running upgrade  -> 0001") for text_ in logs) == 1, logs
            engine = db.make_engine(url)
            try:
                assert migrations.status(engine, HISTORY).at_head
                assert migrations.differences(engine, HISTORY) == []
            finally:
                engine.dispose()
        finally:
            for proc, _, _ in replicas:
                proc.terminate()
            for proc, _, _ in replicas:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            holder.dispose()
