"""HTTP commands as qualification's own input events (`fx.qualification.command_accepted`).

A command that changes a qualification is recorded, in the transaction that applies it, as an
event on `fx.qualification.commands.v1` carrying its arguments and the terms (`Policy`) it
ran under; the domain events it caused derive their ids from that event's id, and its id goes
into the inbox at once, so the live consumer drops it as applied. `decide` is the one path
from a command to domain events: the route runs it live, `on_command_accepted` runs it on a
replay, so a store rebuilt from the topics holds the same state and the same outbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Literal

from fx_common import db
from fx_common.contracts.qualification import CommandAccepted
from fx_common.contracts.topics import QUALIFICATION_COMMANDS
from fx_common.envelope import Event
from fx_common.processing import On, Rejected, UnitOfWork, inbox
from qualification import modes, store
from qualification.domain import DomainEvent, Mode, Policy, Qualification, TransitionRefused
from qualification.handlers import record

Kind = Literal["apply", "confirm_contact", "revoke", "appoint"]
Uow = UnitOfWork[store.Qualifications]


def accepted(
    kind: Kind,
    user_id: str,
    policy: Policy,
    *,
    wechat_id: str | None = None,
    reason: str | None = None,
    appointed_by: str | None = None,
    actor: str | None = None,
) -> CommandAccepted:
    """The command's event: its arguments, who ran it and the terms in force."""
    return CommandAccepted(
        command=kind,
        user_id=user_id,
        wechat_id=wechat_id,
        reason=reason,
        appointed_by=appointed_by,
        actor=actor,
        mode=policy.mode.value,
        contact_step=policy.contact_step,
        required_orders=policy.required_orders,
        assessment_window_s=int(policy.assessment_window.total_seconds()),
        counts_own_orders=policy.counts_own_orders,
        reapply_cooldown_s=int(policy.reapply_cooldown.total_seconds()),
    )


def policy_of(command: CommandAccepted) -> Policy:
    return Policy(
        required_orders=command.required_orders,
        assessment_window=timedelta(seconds=command.assessment_window_s),
        counts_own_orders=command.counts_own_orders,
        reapply_cooldown=timedelta(seconds=command.reapply_cooldown_s),
        mode=Mode(command.mode),
        contact_step=command.contact_step,
    )


def decide(q: Qualification, command: CommandAccepted, now: datetime) -> list[DomainEvent]:
    """The domain events of the command on `q` (raises `TransitionRefused` if it does not fit)."""
    policy = policy_of(command)
    match command.command:
        case "apply":
            return modes.apply(q, now, policy, command.wechat_id)
        case "confirm_contact":
            return modes.confirm_contact(q, now, policy)
        case "revoke":
            if command.reason is None:
                raise Rejected("command_incomplete", "a revoke command without a reason")
            return q.revoke(now, command.reason)
        case "appoint":
            if command.appointed_by is None or command.reason is None:
                raise Rejected("command_incomplete", "an appoint command without who and why")
            return modes.appoint(q, now, policy, command.appointed_by, command.reason)


def record_accepted(
    uow: Uow, q: Qualification, command: CommandAccepted, events: list[DomainEvent], now: datetime
) -> None:
    """Live: publish the command's event, mark it applied, then record what it caused."""
    event = uow.publish(command, time=now, subject=q.user_id)
    uow.session.connection().execute(
        db.InboxRecord.__table__.insert(),  # type: ignore[attr-defined]
        {
            "ce_id": event.id,
            "ce_type": event.type,
            "topic": uow.namespace + QUALIFICATION_COMMANDS,
            "partition": -1,  # applied by the command, before it was published
            "offset": -1,
            "processed_at": now,
            "digest": inbox.digest(event),
        },
    )
    uow.caused_by(event.id, None)
    record(uow, q, events, command.actor)


def command_keys(event: Event, data: CommandAccepted) -> Mapping[str, Iterable[str]]:
    return {"users": [data.user_id]}


def on_command_accepted(uow: Uow, event: Event, data: CommandAccepted) -> None:
    """Replay (or a command event the inbox does not know): apply it as the route did. One
    the state refuses (the topics disagree with what the live store saw) is dead-lettered."""
    q = uow.repo.get(data.user_id) or Qualification(data.user_id)
    try:
        events = decide(q, data, event.time)
    except TransitionRefused as refused:
        raise Rejected(f"command_{refused.code}", refused.message) from refused
    if events:
        record(uow, q, events, data.actor)


HANDLER = On((CommandAccepted,), on_command_accepted, keys=command_keys)
