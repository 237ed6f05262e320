"""What the replicas of a service did in their shared Postgres store, recorded by triggers.

Every replica connects with its own `application_name`; statement triggers record, per
transaction, the inbox rows a batch inserted (topic, partition, offsets, when), the outbox rows
the relay marked published, the outbox rows a sweeper tick staged, and every lease write. The
checks then prove, from what was committed: no partition's batches of two replicas overlapped
in time, every outbox row was marked published once, and only the lease holder of the moment
published or swept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, text

INSTALL = """
CREATE TABLE IF NOT EXISTS fx_test_audit (
    id bigserial PRIMARY KEY, kind text NOT NULL, app text NOT NULL, txid bigint NOT NULL,
    started timestamptz NOT NULL, at timestamptz NOT NULL, topic text, part int,
    first_offset bigint, last_offset bigint, n int, remarked int, name text, owner text
);
CREATE OR REPLACE FUNCTION fx_test_audit_batch() RETURNS trigger AS $$ BEGIN
  INSERT INTO fx_test_audit (kind, app, txid, started, at, topic, part, first_offset,
                             last_offset, n)
  SELECT 'batch', current_setting('application_name'), txid_current(), now(),
         clock_timestamp(), topic, "partition", min("offset"), max("offset"), count(*)
  FROM new_rows GROUP BY topic, "partition";
  RETURN NULL; END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION fx_test_audit_publish() RETURNS trigger AS $$ BEGIN
  INSERT INTO fx_test_audit (kind, app, txid, started, at, n, remarked)
  SELECT 'publish', current_setting('application_name'), txid_current(), now(),
         clock_timestamp(), count(*), count(*) FILTER (WHERE o.published_at IS NOT NULL)
  FROM new_rows n JOIN old_rows o ON o.id = n.id
  WHERE n.published_at IS NOT NULL HAVING count(*) > 0;
  RETURN NULL; END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION fx_test_audit_tick() RETURNS trigger AS $$ BEGIN
  INSERT INTO fx_test_audit (kind, app, txid, started, at, n)
  SELECT 'tick', current_setting('application_name'), txid_current(), now(),
         clock_timestamp(), count(*)
  FROM new_rows WHERE cause_id LIKE 'tick:%' HAVING count(*) > 0;
  RETURN NULL; END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION fx_test_audit_lease() RETURNS trigger AS $$ BEGIN
  INSERT INTO fx_test_audit (kind, app, txid, started, at, name, owner)
  VALUES ('lease', current_setting('application_name'), txid_current(), now(),
          clock_timestamp(), NEW.name, NEW.owner);
  RETURN NULL; END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS fx_test_audit_batch ON fx_inbox;
CREATE TRIGGER fx_test_audit_batch AFTER INSERT ON fx_inbox
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fx_test_audit_batch();
DROP TRIGGER IF EXISTS fx_test_audit_publish ON fx_outbox;
CREATE TRIGGER fx_test_audit_publish AFTER UPDATE ON fx_outbox
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fx_test_audit_publish();
DROP TRIGGER IF EXISTS fx_test_audit_tick ON fx_outbox;
CREATE TRIGGER fx_test_audit_tick AFTER INSERT ON fx_outbox
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fx_test_audit_tick();
DROP TRIGGER IF EXISTS fx_test_audit_lease ON fx_lease;
CREATE TRIGGER fx_test_audit_lease AFTER INSERT OR UPDATE ON fx_lease
  FOR EACH ROW EXECUTE FUNCTION fx_test_audit_lease();
"""


def install(url: str, app_of_owner: Callable[[str], str]) -> None:
    """Install the triggers, and record who holds each lease already (taken before them)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("LOCK TABLE fx_lease IN EXCLUSIVE MODE"))
            conn.execute(text(INSTALL))
            for name, owner in conn.execute(text("SELECT name, owner FROM fx_lease")).all():
                conn.execute(
                    text(
                        "INSERT INTO fx_test_audit (kind, app, txid, started, at, name, owner)"
                        " VALUES ('lease', :app, txid_current(), now(), clock_timestamp(),"
                        " :name, :owner)"
                    ),
                    {"app": app_of_owner(owner), "name": name, "owner": owner},
                )
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Row:
    kind: str
    app: str
    started: datetime
    at: datetime
    topic: str | None
    part: int | None
    n: int | None
    remarked: int | None
    name: str | None


def rows(url: str) -> list[Row]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT kind, app, started, at, topic, part, n, remarked, name"
                    " FROM fx_test_audit ORDER BY at, id"
                )
            ).all()
    finally:
        engine.dispose()
    return [Row(*r) for r in found]


def overlapping_batches(audit: list[Row]) -> list[tuple[Row, Row]]:
    """Pairs of batches of one partition, by two replicas, whose transactions overlapped."""
    by_partition: dict[tuple[str | None, int | None], list[Row]] = {}
    for row in audit:
        if row.kind == "batch":
            by_partition.setdefault((row.topic, row.part), []).append(row)
    clashes = []
    for batches in by_partition.values():
        batches.sort(key=lambda r: r.started)
        for i, first in enumerate(batches):
            for second in batches[i + 1 :]:
                if second.started >= first.at:
                    break
                if second.app != first.app:
                    clashes.append((first, second))
    return clashes


def not_by_the_holder(audit: list[Row], kind: str, lease: str) -> list[Row]:
    """`kind` rows (publish, tick) written by a replica that was not the lease's holder then:
    the holder is whoever wrote the lease last before (renewals included)."""
    holder: str | None = None
    wrong = []
    for row in audit:  # in commit-time order
        if row.kind == "lease" and row.name == lease:
            holder = row.app
        elif row.kind == kind and row.app != holder:
            wrong.append(row)
    return wrong


def summary(audit: list[Row]) -> dict[str, Any]:
    apps: dict[str, dict[str, int]] = {}
    for row in audit:
        if row.kind in ("batch", "publish", "tick"):
            counts = apps.setdefault(row.app, {"batch": 0, "publish": 0, "tick": 0})
            counts[row.kind] += 1
    return apps
