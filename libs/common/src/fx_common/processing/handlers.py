"""Typed handlers: each declares the contract models it handles and the keys its events need
loaded; the processor derives the dispatch table and the batch's pre-load from them.

    On(OrderAttributed, on_attributed, keys=lambda e, d: {"orders": [d.order_id]})

`on_attributed(uow, event, data)` receives `data` as an `OrderAttributed`: a handler sees only
the types it declared (the table is keyed by the registry's type of each model, so a type
nobody declared is never dispatched to it). Before the first handler of a batch runs, the
keys its fresh events declare are merged by kind and handed once to the service's repository
(`uow.repo.load(keys)`): one set-based load per batch, no per-type `isinstance` chains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from fx_common.contracts.base import ContractModel
from fx_common.contracts.registry import type_for
from fx_common.envelope import Event
from fx_common.processing.unit_of_work import UnitOfWork

M = TypeVar("M", bound=ContractModel)

Keys = dict[str, set[Any]]
"""What a batch needs loaded, by kind (e.g. "orders" -> order ids): the repository's words."""

KeysOf = Callable[[Event, M], Mapping[str, Iterable[Any]]]


class Preloading(Protocol):
    """A repository that loads, set-based, what a batch's handlers will look up."""

    def load(self, keys: Keys) -> None: ...


@dataclass(frozen=True)
class On(Generic[M]):
    """The handler of events whose data is one of `models`, and what they need loaded."""

    models: tuple[type[M], ...]
    apply: Callable[[UnitOfWork[Any], Event, M], None]
    keys: KeysOf[M] | None = None

    def ce_types(self) -> list[str]:
        return [type_for(model) for model in self.models]


def dispatch_table(handlers: Sequence[On[Any]]) -> dict[str, Callable[[UnitOfWork, Event], None]]:
    """`ce_type` -> handler, from the models each handler declared (one handler per type)."""
    table: dict[str, Callable[[UnitOfWork, Event], None]] = {}
    for on in handlers:
        for model in on.models:
            ce_type = type_for(model)
            if ce_type in table:
                raise ValueError(f"two handlers declare {model.__name__} ({ce_type})")
            table[ce_type] = _typed(on, model)
    return table


def _typed(on: On[Any], model: type[ContractModel]) -> Callable[[UnitOfWork, Event], None]:
    def handle(uow: UnitOfWork, event: Event) -> None:
        if not isinstance(event.data, model):
            raise TypeError(f"{event.type} decoded to {type(event.data).__name__}")
        on.apply(uow, event, event.data)

    return handle


def keys_of(handlers: Sequence[On[Any]], events: Sequence[Event]) -> Keys:
    """The keys the handlers declare for `events`, merged by kind."""
    by_type = {ce_type: on for on in handlers if on.keys is not None for ce_type in on.ce_types()}
    keys: Keys = {}
    for event in events:
        on = by_type.get(event.type)
        if on is None or on.keys is None:
            continue
        for kind, values in on.keys(event, event.data).items():
            keys.setdefault(kind, set()).update(values)
    return keys


def preload(handlers: Sequence[On[Any]]) -> Callable[[UnitOfWork, Sequence[Event]], None]:
    """The batch's pre-load: the declared keys of its fresh events, loaded by `uow.repo`."""

    def load(uow: UnitOfWork, events: Sequence[Event]) -> None:
        repository: Preloading = uow.repo
        repository.load(keys_of(handlers, events))

    return load
