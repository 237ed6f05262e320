"""Delivery guarantees of the common processing model, proven on the real broker by
running a probe service (tests/probe_service.py) as real processes and killing them."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fx_common.contracts.topics import dlq_topic
from fx_common.envelope import encode
from tests.kafka_helpers import header, publish, read_all
from tests.probing import T0, Probe, effect_count, paid, query, wait_for

pytestmark = pytest.mark.integration


async def test_kill_minus_9_mid_batch_loses_and_duplicates_nothing(
    bootstrap: str, make_topics: Any, unique: str, tmp_path: Path, probes: list[Probe]
) -> None:
    total, resent = 20000, 500
    in_topic, mid_topic, out_topic = (f"t.{unique}.{n}" for n in ("in", "mid", "out"))
    await make_topics(in_topic, mid_topic, out_topic, partitions=3)
    events = [paid(f"o-{i}", f"b-{i % 97}") for i in range(total)]
    await publish(bootstrap, in_topic, events + events[:resent])  # the same ce_ids again

    first_url = f"sqlite:///{tmp_path / 'first.db'}"
    second_url = f"sqlite:///{tmp_path / 'second.db'}"
    first = Probe(f"probe-a-{unique}", in_topic, mid_topic, first_url)
    second = Probe(f"probe-b-{unique}", mid_topic, out_topic, second_url)
    probes += [first, second]
    first.start()
    second.start()

    kills_mid_stream = 0
    rng = random.Random(7)
    for round_ in range(4):
        before = effect_count(first_url)
        step = rng.randint(500, 3000)
        deadline = asyncio.get_running_loop().time() + 60
        while (done := effect_count(first_url)) < min(before + step, total):
            assert asyncio.get_running_loop().time() < deadline, "no progress after restart"
            await asyncio.sleep(0.01)
        if before < done < total:
            kills_mid_stream += 1
        first.kill9()
        if round_ == 1:
            second.kill9()
            second.start()
        first.start()

    assert await wait_for(first_url, total) == total
    assert await wait_for(second_url, total) == total
    first.stop()
    second.stop()
    assert kills_mid_stream >= 2, "the kills must land while batches were in flight"

    for url in (first_url, second_url):
        assert query(url, "SELECT count(DISTINCT event_id) FROM probe_effect")[0][0] == total
    outbox = query(
        first_url, "SELECT count(*), count(DISTINCT ce_id), count(published_at) FROM fx_outbox"
    )
    assert outbox[0] == (total, total, total)
    on_wire = await read_all(bootstrap, mid_topic, expect=total)
    ids = Counter(header(r, "ce_id") for r in on_wire)
    assert len(ids) == total  # every effect published; re-sends (if any) share the ce_id


async def test_poison_records_go_to_the_dlq_and_the_partition_moves_on(
    bootstrap: str, make_topics: Any, unique: str, tmp_path: Path, probes: list[Probe]
) -> None:
    in_topic, out_topic = f"t.{unique}.in", f"t.{unique}.out"
    await make_topics(in_topic, out_topic, partitions=1)
    good = paid("o-good-1", "b-1")
    value, headers = encode(good)
    negative = value.replace(b'"paid_amount_fen":25800', b'"paid_amount_fen":-1')
    wrong_type = value.replace(b'"quantity":2', b'"quantity":"two"')
    other_version = [(k, b"2.0" if k == "ce_specversion" else v) for k, v in headers]
    poison = [
        (b"b-1", b"{not json", headers),
        (b"b-1", wrong_type, [(k, b"p-2" if k == "ce_id" else v) for k, v in headers]),
        (b"b-1", negative, [(k, b"p-3" if k == "ce_id" else v) for k, v in headers]),
        (b"b-1", value, [(k, b"p-4" if k == "ce_id" else v) for k, v in other_version]),
    ]
    await publish(bootstrap, in_topic, [good], raw=poison)
    await publish(bootstrap, in_topic, [paid("o-good-2", "b-1")])

    url = f"sqlite:///{tmp_path / 'probe.db'}"
    name = f"probe-{unique}"
    probe = Probe(name, in_topic, out_topic, url)
    probes.append(probe)
    probe.start()
    assert await wait_for(url, 2) == 2
    probe.stop()

    assert sorted(r[0] for r in query(url, "SELECT order_id FROM probe_effect")) == [
        "o-good-1",
        "o-good-2",
    ]
    dead = await read_all(bootstrap, dlq_topic(name), expect=4)
    assert sorted(header(r, "fx_error_type") or "" for r in dead) == [
        "contract_violation",
        "contract_violation",
        "invalid_json",
        "unsupported_version",
    ]
    for record in dead:
        assert header(record, "fx_original_topic") == in_topic
        assert header(record, "fx_original_partition") == "0"
        assert header(record, "fx_error_message")
        assert header(record, "fx_failed_at")
        assert record.key == b"b-1"
    negative_dead = next(r for r in dead if b'"paid_amount_fen":-1' in r.value)
    assert "greater than or equal to 0" in (header(negative_dead, "fx_error_message") or "")


async def test_per_key_order_holds_with_two_replicas_and_a_rebalance(
    bootstrap: str, make_topics: Any, unique: str, store_url: str, probes: list[Probe]
) -> None:
    keys, per_key = 24, 120
    in_topic, out_topic = f"t.{unique}.in", f"t.{unique}.out"
    await make_topics(in_topic, out_topic, partitions=4)
    events = [
        paid(f"{k:02d}-{seq:04d}", f"buyer-{k:02d}", T0 + timedelta(seconds=seq))
        for seq in range(per_key)
        for k in range(keys)
    ]
    await publish(bootstrap, in_topic, events[: len(events) // 2])
    name = f"probe-{unique}"
    one, two = (
        Probe(name, in_topic, out_topic, store_url),
        Probe(name, in_topic, out_topic, store_url),
    )
    probes += [one, two]
    one.start()
    await asyncio.sleep(0.5)
    two.start()  # joins the group mid-stream: partitions move between replicas
    await publish(bootstrap, in_topic, events[len(events) // 2 :])
    await asyncio.sleep(0.5)
    one.stop()  # and move back again
    assert await wait_for(store_url, keys * per_key) == keys * per_key
    two.stop()

    rows = query(store_url, "SELECT key, order_id FROM probe_effect ORDER BY id")
    by_key: dict[str, list[str]] = {}
    for key, order_id in rows:
        by_key.setdefault(key, []).append(order_id)
    assert len(by_key) == keys
    for key, order_ids in by_key.items():
        assert order_ids == sorted(order_ids), f"{key} processed out of order"
        assert len(order_ids) == per_key == len(set(order_ids))
