"""An SQLite store keeps a connection per thread that reads it at once, instead of closing the
ones past SQLAlchemy's default pool of 5 on their return and opening them again (HTTP routes
run on 40 threads; each new connection runs the store's pragmas)."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import event, text

from fx_common import db


def test_concurrent_readers_keep_their_connections(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    closed: list[object] = []
    event.listen(engine, "close", lambda conn, _record: closed.append(conn))
    barrier = threading.Barrier(12)

    def read_a_few_times() -> None:
        for _ in range(5):
            with engine.connect() as conn:
                barrier.wait(10)  # twelve connections checked out at the same moment
                conn.execute(text("SELECT 1"))

    threads = [threading.Thread(target=read_a_few_times) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert closed == [], "a returned connection was closed, to be opened again"
    engine.dispose()
