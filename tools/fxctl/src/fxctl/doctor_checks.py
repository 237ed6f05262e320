"""The checks of `fxctl doctor`: each returns findings, a problem naming the command that
looks closer. Read-only: nothing here writes to the broker or a store."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from fx_common import db, migrations
from fx_common.contracts.topics import SERVICES, dlq_topic
from fx_common.runtime import all_topics
from fxctl.context import Target
from fxctl.kafka_io import beginning_offsets, end_offsets
from fxctl.replay_cmd import load_spec
from fxctl.topics_cmd import gather


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    ok: bool
    message: str
    hint: str | None = None  # the command that looks closer


def good(check: str, subject: str, message: str) -> Finding:
    return Finding(check, subject, True, message)


def bad(check: str, subject: str, message: str, hint: str) -> Finding:
    return Finding(check, subject, False, message, hint)


# --- the broker -----------------------------------------------------------------------------


async def brokers_and_topics(where: Target, min_replicas: int) -> list[Finding]:
    admin = AIOKafkaAdminClient(bootstrap_servers=where.bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        names = [where.topic(t) for t in all_topics()]
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    ids = sorted(b["node_id"] for b in cluster["brokers"])
    found = [good("brokers", where.bootstrap, f"{len(ids)} broker(s) {ids}, controller "
                  f"{cluster['controller_id']}")]  # fmt: skip
    for topic in described:
        found.append(_topic_health(topic, min_replicas))
    return found


def _topic_health(topic: dict[str, object], min_replicas: int) -> Finding:
    name = str(topic["topic"])
    partitions = topic.get("partitions") or []
    assert isinstance(partitions, list)
    if topic.get("error_code") or not partitions:
        return bad("topics", name, "missing", "fxctl topics (the services create their topics)")
    offline = [p["partition"] for p in partitions if p["leader"] in (-1, None)]
    short = [p["partition"] for p in partitions if len(p["isr"]) < len(p["replicas"])]
    replicas = min(len(p["replicas"]) for p in partitions)
    hint = f"deploy/kafka/kafka.sh topics --describe --topic {name}"
    if offline:
        return bad("topics", name, f"partitions without a leader: {offline}", hint)
    if short:
        return bad("topics", name, f"under-replicated partitions (ISR < replicas): {short}", hint)
    summary = f"{len(partitions)} partition(s), replication {replicas}"
    if replicas < min_replicas:
        return bad("topics", name, f"{summary} < {min_replicas} wanted", hint)
    return good("topics", name, summary)


async def lag_and_dead_letters(where: Target, max_lag: int) -> list[Finding]:
    found = []
    for state in await gather(where):
        for group in state.groups:
            subject = f"{group.group} on {state.topic}"
            if group.lag > max_lag:
                found.append(bad("lag", subject, f"{group.lag} records behind", "fxctl topics"))
            else:
                found.append(good("lag", subject, f"lag {group.lag}"))
    dlqs = {service: where.topic(dlq_topic(service)) for service in SERVICES}
    ends = await end_offsets(where.bootstrap, list(dlqs.values()))
    starts = await beginning_offsets(where.bootstrap, list(dlqs.values()))
    for service, topic in dlqs.items():
        size = sum(end - starts.get(tp, 0) for tp, end in ends.items() if tp.topic == topic)
        if size:
            hint = f"fxctl dlq list {service}"
            found.append(bad("dlq", topic, f"{size} dead letter(s)", hint))
        else:
            found.append(good("dlq", topic, "empty"))
    return found


# --- the stores -----------------------------------------------------------------------------


def store_findings(service: str, url: str, now: datetime) -> list[Finding]:
    """Outbox backlog, leases and migration revision of one service's store."""
    url = db.normalise_url(url)
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).is_file():
        hint = f"fxctl doctor --store {service}=DATABASE_URL"
        return [bad("store", service, f"no store at {url}", hint)]
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            found = [_revision(service, conn)]
            if "fx_outbox" in tables:
                found.append(_backlog(service, conn))
            if "fx_lease" in tables:
                found += _leases(service, conn, now)
            return found
    except Exception as exc:  # any driver error: the store cannot be read
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [bad("store", service, f"cannot read {url}: {reason}", "fxctl doctor --store …")]
    finally:
        engine.dispose()


def _revision(service: str, conn: Connection) -> Finding:
    history = load_spec(service).migrations
    if history is None:
        return good("migrations", service, "no migration history")
    found = migrations.status_of(conn, history)
    if found.at_head:
        return good("migrations", service, found.describe())
    return bad("migrations", service, found.describe(), history.command)


def _backlog(service: str, conn: object) -> Finding:
    pending = conn.execute(  # type: ignore[attr-defined]
        text("SELECT count(*), min(created_at) FROM fx_outbox WHERE published_at IS NULL")
    ).one()
    if not pending[0]:
        return good("outbox", service, "nothing waiting to be published")
    hint = f"fxctl doctor (relay lease of {service}); the service's log (outbox relay failed)"
    return bad("outbox", service, f"{pending[0]} row(s) unpublished since {pending[1]}", hint)


def _leases(service: str, conn: object, now: datetime) -> list[Finding]:
    rows = conn.execute(text("SELECT name, owner, expires_at FROM fx_lease")).all()  # type: ignore[attr-defined]
    found = []
    for name, owner, expires in rows:
        expires = _utc(expires)
        if expires < now:
            message = f"no replica holds the {name} lease (expired {expires:%H:%M:%S}, {owner})"
            found.append(bad("leases", service, message, f"fxctl doctor; {service}'s log"))
        else:
            found.append(good("leases", service, f"{name} held by {owner}"))
    return found


def _utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- the running services -------------------------------------------------------------------


def scrape(url: str, timeout: float = 3.0) -> dict[str, float]:
    """The service's /metrics as {"name{labels}": value} (samples without labels by name)."""
    with urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=timeout) as response:
        body = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def services(endpoints: dict[str, str], max_skew_s: float) -> list[Finding]:
    found, clocks = [], {}
    for service, url in endpoints.items():
        try:
            samples = await asyncio.to_thread(scrape, url)
        except (urllib.error.URLError, OSError) as exc:
            hint = f"the service's log; curl {url}/readyz"
            found.append(bad("services", service, f"{url} does not answer: {exc}", hint))
            continue
        found.append(good("services", service, f"{url} answers"))
        clock = next((v for k, v in samples.items() if k.startswith("fx_clock_now_seconds")), None)
        if clock is not None:
            clocks[service] = clock
    if len(clocks) >= 2:
        found.append(_clock_agreement(clocks, max_skew_s))
    elif endpoints and len(clocks) < len(endpoints):
        found.append(good("clock", "services", "fewer than two clocks exported: not compared"))
    return found


def _clock_agreement(clocks: dict[str, float], max_skew_s: float) -> Finding:
    stamps = ", ".join(
        f"{s} {datetime.fromtimestamp(v, UTC):%Y-%m-%d %H:%M:%S}" for s, v in clocks.items()
    )
    skew = max(clocks.values()) - min(clocks.values())
    if skew > max_skew_s:
        hint = "fxctl clock show; fxctl topics (a service behind on fx.clock.v1)"
        return bad("clock", "services", f"clocks {skew:.0f}s apart: {stamps}", hint)
    return good("clock", "services", f"clocks agree within {skew:.0f}s: {stamps}")


# --- the ledger -----------------------------------------------------------------------------


async def reconciliation(where: Target, payout_url: str, wait_s: float) -> list[Finding]:
    """payout's full reconciliation (its spec's `audit`): the ledger on its own and against
    fx.commissions.v1."""
    spec = load_spec("payout")
    if spec.audit is None:
        return []
    settings = spec.settings_cls(
        database_url=payout_url,
        kafka_bootstrap_servers=where.bootstrap,
        topic_namespace=where.namespace,
    )
    try:
        result = await spec.audit(settings, wait_s)
    except Exception as exc:  # the store or the topic cannot be read
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [bad("reconciliation", "payout", f"not run: {reason}", "fx-payout-reconcile")]
    if result.ok:
        return [good("reconciliation", "payout", result.summary)]
    shown = "; ".join(result.differences[:3])
    message = f"{result.summary}: {shown}"
    return [bad("reconciliation", "payout", message, "fx-payout-reconcile (DATABASE_URL=…)")]
