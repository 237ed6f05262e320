"""The broker and topic namespace every command talks to (the global options)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import typer
from aiokafka.errors import KafkaError

from fx_common.contracts.topics import consumer_group
from fxctl.output import fail

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    bootstrap: str
    namespace: str = ""

    def topic(self, name: str) -> str:
        """The namespaced name of a contract topic (a name already prefixed is kept)."""
        if self.namespace and name.startswith(self.namespace):
            return name
        return self.namespace + name

    def group(self, service: str) -> str:
        return self.namespace + consumer_group(service)

    def bare(self, topic: str) -> str:
        """The contract name of a namespaced topic."""
        return topic[len(self.namespace) :] if topic.startswith(self.namespace) else topic


def target(ctx: typer.Context) -> Target:
    obj = ctx.find_root().obj
    if not isinstance(obj, Target):
        raise RuntimeError("fxctl's root callback did not run")
    return obj


def run(target: Target, coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's Kafka work; a broker that cannot be reached is a clear error."""
    try:
        return asyncio.run(coro)
    except KafkaError as exc:
        fail(f"Kafka at {target.bootstrap}: {exc!r}", code=1)
