"""A minimal service on the common processing model, run as its own process by the
integration tests (so they can `kill -9` it): every `mall.order.paid` on the input topic
writes one effect row and publishes one `fx.order.completed` to the output topic.

    python tests/probe_service.py NAME INPUT_TOPIC OUTPUT_TOPIC DATABASE_URL
"""

from __future__ import annotations

import asyncio
import signal
import sys

from sqlmodel import Field, SQLModel

from fx_common import db
from fx_common.contracts.attributions import AttributedOrderCompleted
from fx_common.envelope import Event
from fx_common.logs import configure_logging
from fx_common.processing import UnitOfWork
from fx_common.runtime import ServiceRuntime, ServiceSpec
from fx_common.settings import ServiceSettings


class Effect(SQLModel, table=True):
    """Deliberately without a unique constraint: a duplicate effect would show as a row."""

    __tablename__ = "probe_effect"
    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(index=True)
    key: str
    order_id: str


def spec(name: str, input_topic: str, output_topic: str) -> ServiceSpec:
    def on_paid(uow: UnitOfWork, event: Event) -> None:
        data = event.data
        uow.session.add(
            Effect(event_id=event.id, key=data.buyer_id, order_id=data.order_id)  # type: ignore[attr-defined]
        )
        completed = AttributedOrderCompleted(
            order_id=data.order_id,  # type: ignore[attr-defined]
            distributor_id=data.buyer_id,  # type: ignore[attr-defined]
        )
        uow.publish_to(output_topic, "fx.order.completed", completed, time=event.time)

    def on_completed(uow: UnitOfWork, event: Event) -> None:
        data = event.data
        uow.session.add(
            Effect(event_id=event.id, key=data.distributor_id, order_id=data.order_id)  # type: ignore[attr-defined]
        )

    return ServiceSpec(
        name=name,
        topics=[input_topic],
        handlers={"mall.order.paid": on_paid, "fx.order.completed": on_completed},
        tables=[Effect],
    )


async def main(name: str, input_topic: str, output_topic: str, url: str) -> None:
    configure_logging(name, "WARNING")
    runtime = ServiceRuntime(
        spec(name, input_topic, output_topic),
        ServiceSettings(service=name, database_url=url, batch_max_records=200),
    )
    # A test double without a migration history: it makes its own tables.
    db.create_schema(runtime.engine, runtime.spec.tables)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await runtime.start()
    print("ready", flush=True)
    await stop.wait()
    await runtime.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
