"""AsyncAPI 3.0 documents generated from the code: per service (served at `/asyncapi`) and
one for the whole cluster (`python -m fx_common.asyncapi [FILE]`, checked in as
`contracts/asyncapi/cluster.json`; a test fails when it drifts).

Channels are the topics; messages are the event types with their JSON Schema (the same as
`contracts/<ce_type>.json`), the CloudEvents headers and the Kafka key (Kafka bindings
0.5.0: the key's schema per message, the topic per channel, the group per receive).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fx_common.contracts.export import key_text, schema_for
from fx_common.contracts.registry import EVENT_TOPIC, TOPIC_EVENT_TYPES
from fx_common.contracts.topics import CLOCK, SERVICES, consumer_group, dlq_topic

KAFKA_BINDING_VERSION = "0.5.0"
SERVERS: dict[str, Any] = {
    "production": {
        "host": "kafka:9092",
        "protocol": "kafka",
        "description": "The production cluster: the services read its address from "
        "KAFKA_BOOTSTRAP_SERVERS. Records are partitioned by murmur2 of the key, the Java "
        "client's default (kafkajs' DefaultPartitioner; with librdkafka set "
        "partitioner=murmur2_random); mall.* topics are created by the mall's platform team.",
    },
    "local": {
        "host": "127.0.0.1:9092",
        "protocol": "kafka",
        "description": "The single local broker of `make up` / `make infra-up`.",
    },
}

CLOUDEVENTS_HEADERS = {
    "type": "object",
    "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "content-type"],
    "properties": {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "description": "Unique event id: the idempotency key."},
        "ce_type": {"type": "string"},
        "ce_source": {"type": "string"},
        "ce_time": {"type": "string", "format": "date-time", "description": "When it happened."},
        "ce_subject": {"type": "string"},
        "content-type": {"const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C trace context."},
    },
}
DLQ_HEADERS = [
    "fx_error_type", "fx_error_message", "fx_original_topic", "fx_original_partition",
    "fx_original_offset", "fx_failed_at",
]  # fmt: skip


def _channel_id(topic: str) -> str:
    return topic.replace(".", "_")


def _message_id(ce_type: str) -> str:
    return ce_type.replace(".", "_")


def _channels(topics: list[str], types: list[str]) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for topic in topics:
        refs = {
            _message_id(t): {"$ref": f"#/components/messages/{_message_id(t)}"}
            for t in TOPIC_EVENT_TYPES.get(topic, ())
            if t in types
        }
        if topic.startswith("fx.dlq."):
            refs = {"dead_letter": {"$ref": "#/components/messages/dead_letter"}}
        channels[_channel_id(topic)] = {
            "address": topic,
            "messages": refs,
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
    return channels


def _group_binding(group: str | None) -> dict[str, Any]:
    if not group:
        return {}
    kafka = {"groupId": {"type": "string", "const": group}, "bindingVersion": KAFKA_BINDING_VERSION}
    return {"bindings": {"kafka": kafka}}


def _operations(
    topics: list[str], received: list[str], sent_topics: list[str], group: str | None
) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for topic in topics:
        channel = {"$ref": f"#/channels/{_channel_id(topic)}"}
        received_here = [t for t in received if EVENT_TOPIC[t] == topic]
        if received_here:
            operations[f"receive_{_channel_id(topic)}"] = {
                "action": "receive",
                "channel": channel,
                "messages": [
                    {"$ref": f"#/channels/{_channel_id(topic)}/messages/{_message_id(t)}"}
                    for t in received_here
                ],
                **_group_binding(group),
            }
        if topic in sent_topics:
            operations[f"send_{_channel_id(topic)}"] = {"action": "send", "channel": channel}
    return operations


def _message(ce_type: str) -> dict[str, Any]:
    key = {
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
        "description": f"The Kafka key: {key_text(ce_type)} (it defines ordering).",
    }
    return {
        "name": ce_type,
        "title": ce_type,
        "contentType": "application/json",
        "headers": CLOUDEVENTS_HEADERS,
        "payload": schema_for(ce_type),
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _messages(topics: list[str], types: list[str]) -> dict[str, Any]:
    messages: dict[str, Any] = {_message_id(t): _message(t) for t in types}
    if any(t.startswith("fx.dlq.") for t in topics):
        dlq_headers: dict[str, Any] = {
            "type": "object",
            "required": DLQ_HEADERS,
            "properties": {h: {"type": "string"} for h in DLQ_HEADERS},
        }
        messages["dead_letter"] = {
            "name": "dead_letter",
            "summary": "The original record as consumed, with the error in headers.",
            "headers": dlq_headers,
        }
    return messages


def document(
    title: str,
    consumes: Iterable[str],
    publishes: Iterable[str],
    *,
    group: str | None = None,
    description: str = "",
) -> dict[str, Any]:
    """An AsyncAPI 3.0 document: `consumes` are event types received, `publishes` topics sent."""
    received = sorted(set(consumes))
    sent_topics = sorted(set(publishes))
    sent = [t for topic in sent_topics for t in TOPIC_EVENT_TYPES.get(topic, ())]
    types = sorted(set(received) | set(sent))
    topics = sorted({EVENT_TOPIC[t] for t in types} | set(sent_topics))
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": "1.0.0", "description": description},
        "defaultContentType": "application/json",
        "servers": SERVERS,
        "channels": _channels(topics, types),
        "operations": _operations(topics, received, sent_topics, group),
        "components": {"messages": _messages(topics, types)},
    }


def service_document(
    name: str, handled_types: Iterable[str], outputs: Sequence[str]
) -> dict[str, Any]:
    consumes = [*handled_types, "fx.clock.set"]
    return document(
        f"fenxiao {name}",
        consumes,
        [*outputs, dlq_topic(name)],
        group=consumer_group(name),
        description=f"Events the {name} service consumes (group {consumer_group(name)}) and "
        f"publishes. `{CLOCK}` is consumed only under FX_CLOCK=simulated.",
    )


def cluster_document() -> dict[str, Any]:
    """Every topic and event type of the cluster (upstream, ours, clock, DLQs)."""
    return document(
        "fenxiao cluster",
        [t for t in EVENT_TOPIC if t.startswith("mall.")],
        [
            *(t for t in TOPIC_EVENT_TYPES if not t.startswith("mall.")),
            *(dlq_topic(s) for s in SERVICES),
        ],
        description="The whole event surface: upstream mall.* topics we consume, the fx.* "
        "topics the four services publish, the simulated clock and the dead-letter topics.",
    )


def dumps(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "contracts/asyncapi/cluster.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dumps(cluster_document()), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
