"""fxctl: the engineer's CLI of fenxiao (topics, tail, trace, dlq, ignored, replay, clock,
publish, simulate, doctor, ops). Every command talks to `--bootstrap` and prefixes topics and
consumer groups with `--namespace`, like the services do with FX_TOPIC_NAMESPACE."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from fxctl import (
    clock_cmd,
    dlq,
    doctor,
    ignored_cmd,
    ops_cmd,
    publish,
    replay_cmd,
    simulate,
    tail,
    topics_cmd,
    trace,
)
from fxctl.context import Target

app = typer.Typer(
    help="fenxiao operator and engineer CLI", no_args_is_help=True, pretty_exceptions_enable=False
)


@app.callback()
def main(
    ctx: typer.Context,
    bootstrap: Annotated[
        str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers.")
    ] = "127.0.0.1:9092",
    namespace: Annotated[
        str, typer.Option(envvar="FX_TOPIC_NAMESPACE", help="Prefix of topics and groups.")
    ] = "",
) -> None:
    # aiokafka logs its own retries (e.g. a new topic's leader election) as warnings.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    ctx.obj = Target(bootstrap=bootstrap, namespace=namespace)


app.command()(topics_cmd.topics)
app.command()(tail.tail)
app.command()(trace.trace)
app.add_typer(dlq.app, name="dlq")
app.command()(ignored_cmd.ignored)
app.command("replay")(replay_cmd.replay_command)
app.add_typer(clock_cmd.app, name="clock")
app.command()(publish.publish)
app.command()(simulate.simulate)
app.command()(doctor.doctor)
app.add_typer(ops_cmd.app, name="ops")
