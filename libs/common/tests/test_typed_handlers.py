"""Typed handlers (`fx_common.processing.On`): the dispatch table and the batch's pre-load
derive from what each handler declares; `uow.repo` is the service's repository and
`uow.publish` takes topic, type and key from the contract registry."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from fx_common import db
from fx_common.contracts.attributions import AttributedOrderCompleted
from fx_common.contracts.mall_orders import OrderCompleted, OrderPaid
from fx_common.contracts.samples import SAMPLES
from fx_common.envelope import Event
from fx_common.processing import Keys, On, UnitOfWork
from fx_common.processing.handlers import dispatch_table, keys_of
from fx_common.runtime import ServiceSpec, processor_for
from fx_common.testing import record

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


class Repo:
    """A repository that notes what the batch asked it to load."""

    loads: ClassVar[list[Keys]] = []

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def load(self, keys: Keys) -> None:
        Repo.loads.append(keys)


Uow = UnitOfWork[Repo]
SEEN: list[tuple[str, str]] = []


def paid_keys(event: Event, data: OrderPaid) -> Mapping[str, Iterable[str]]:
    return {"orders": [data.order_id], "buyers": [data.buyer_id]}


def on_paid(uow: Uow, event: Event, data: OrderPaid) -> None:
    assert isinstance(uow.repo, Repo)
    SEEN.append(("paid", data.order_id))
    completed = AttributedOrderCompleted(order_id=data.order_id, distributor_id=data.buyer_id)
    uow.publish(completed, time=event.time)


def on_completed(uow: Uow, event: Event, data: OrderCompleted) -> None:
    SEEN.append(("completed", data.order_id))


HANDLERS: list[On[Any]] = [
    On((OrderPaid,), on_paid, keys=paid_keys),
    On((OrderCompleted,), on_completed, keys=lambda e, d: {"orders": [d.order_id]}),
]


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    db.create_schema(engine, [])
    SEEN.clear()
    Repo.loads.clear()
    return engine


def paid(order_id: str, buyer_id: str) -> Any:
    data = SAMPLES["mall.order.paid"] | {"order_id": order_id, "buyer_id": buyer_id}
    return record("mall.order.paid", data, time=T0)


def test_the_table_is_keyed_by_the_registry_type_of_each_declared_model() -> None:
    assert sorted(dispatch_table(HANDLERS)) == ["mall.order.completed", "mall.order.paid"]
    with pytest.raises(ValueError, match="two handlers declare OrderPaid"):
        dispatch_table([*HANDLERS, On((OrderPaid,), on_paid)])


def test_the_batch_loads_once_the_keys_its_events_declare(engine: Engine) -> None:
    spec = ServiceSpec("svc", [], {}, [], on=HANDLERS, repository=Repo)
    refunded = record("mall.order.refunded", SAMPLES["mall.order.refunded"], time=T0)
    outcome = processor_for(spec, engine).process([paid("o1", "b1"), paid("o2", "b1"), refunded])
    # one load for the batch, merged by kind; the refund is declared by nobody: not dispatched,
    # and it adds no keys
    assert Repo.loads == [{"orders": {"o1", "o2"}, "buyers": {"b1"}}]
    assert SEEN == [("paid", "o1"), ("paid", "o2")]
    assert (outcome.applied, outcome.ignored) == (2, 1)


def test_keys_of_ignores_events_no_handler_declared() -> None:
    events = [
        Event(id="e1", type="mall.order.completed", source="s", time=T0,
              data=OrderCompleted.model_validate(SAMPLES["mall.order.completed"])),
    ]  # fmt: skip
    assert keys_of(HANDLERS[:1], events) == {}
    assert keys_of(HANDLERS, events) == {"orders": {SAMPLES["mall.order.completed"]["order_id"]}}


def test_publish_takes_topic_type_and_key_from_the_registry(engine: Engine) -> None:
    spec = ServiceSpec("svc", [], {}, [], on=HANDLERS, repository=Repo)
    processor_for(spec, engine).process([paid("o1", "b1")])
    with Session(engine) as session:
        [row] = session.exec(select(db.OutboxRecord)).all()
    assert (row.topic, row.ce_type, row.key) == ("fx.attributions.v1", "fx.order.completed", "b1")
    assert json.loads(row.value or b"")["order_id"] == "o1"


def test_a_service_without_a_repository_says_so(engine: Engine) -> None:
    with Session(engine) as session:
        uow: UnitOfWork = UnitOfWork(session, "svc")
        with pytest.raises(RuntimeError, match="svc declares no repository"):
            uow.repo  # noqa: B018
