"""Export the JSON Schema of every event type: `python -m fx_common.contracts.export [DIR]`.

Writes into DIR (default `contracts/`):
- `<ce_type>.json` per type: the schema of its `data`, with `$id` and `title` the `ce_type`,
  its topic and Kafka key in the description, and `examples` that validate;
- `cloudevents.structured.json` (a whole event in structured content mode, its `data`
  checked against the schema of its `type`) and `cloudevents.binary-headers.json` (the Kafka
  headers of binary content mode);
- `index.json` (topic → type → key and schema file, and the envelope schemas).

Every schema uses only JSON Schema 2020-12 keywords, so strict validators (ajv `strict:
true`) compile them as shipped. The output is deterministic so the checked-in copy can be
compared with a fresh export.
"""

import json
import sys
from pathlib import Path
from typing import Any

from fx_common.contracts.envelope_schema import (
    BINARY_HEADERS_FILE,
    STRUCTURED_FILE,
    binary_headers_schema,
    structured_schema,
)
from fx_common.contracts.registry import (
    EVENT_KEY_FIELD,
    EVENT_MODELS,
    EVENT_TOPIC,
    IGNORED_TYPES,
    TOPIC_CONSTANT_KEY,
    TOPIC_EVENT_TYPES,
)
from fx_common.contracts.samples import examples_of

__all__ = ["EXPORT_COMMAND", "dumps", "export_schemas", "key_spec", "main", "schema_for"]

EXPORT_COMMAND = "uv run python -m fx_common.contracts.export contracts/"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
INDEX_FILE = "index.json"


def key_spec(ce_type: str) -> dict[str, str]:
    """The Kafka key of `ce_type`: `{"field": <data field>}` or `{"const": <key>}`."""
    field = EVENT_KEY_FIELD.get(ce_type)
    if field is not None:
        return {"field": field}
    return {"const": TOPIC_CONSTANT_KEY[EVENT_TOPIC[ce_type]]}


def key_text(ce_type: str) -> str:
    key = key_spec(ce_type)
    return f"data.{key['field']}" if "field" in key else f"the constant {key['const']!r}"


def schema_for(ce_type: str) -> dict[str, Any]:
    """The JSON Schema of the `data` of `ce_type`, with its topic and key described."""
    schema = EVENT_MODELS[ce_type].model_json_schema(mode="validation")
    description = schema.get("description", "").rstrip()
    where = f"Topic `{EVENT_TOPIC[ce_type]}`; Kafka key: {key_text(ce_type)}."
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{ce_type}.json",
        **schema,
        "title": ce_type,
        "description": f"{description}\n\n{where}" if description else where,
        "examples": examples_of(ce_type),
    }


def export_schemas() -> dict[str, dict[str, Any]]:
    """File name → content of every file the export writes."""
    files: dict[str, dict[str, Any]] = {
        f"{ce_type}.json": schema_for(ce_type) for ce_type in EVENT_MODELS
    }
    files[STRUCTURED_FILE] = structured_schema()
    files[BINARY_HEADERS_FILE] = binary_headers_schema()
    files[INDEX_FILE] = {
        "envelope": {"binary_headers": BINARY_HEADERS_FILE, "structured": STRUCTURED_FILE},
        "topics": {
            topic: {
                "ignored_types": sorted(IGNORED_TYPES.get(topic, ())),
                "types": {
                    ce_type: {
                        "key": key_spec(ce_type),
                        "model": EVENT_MODELS[ce_type].__name__,
                        "schema": f"{ce_type}.json",
                    }
                    for ce_type in ce_types
                },
            }
            for topic, ce_types in TOPIC_EVENT_TYPES.items()
        },
    }
    return files


def dumps(content: dict[str, Any]) -> str:
    """The exact text written for one file."""
    return json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "contracts")
    target.mkdir(parents=True, exist_ok=True)
    files = export_schemas()
    for stale in target.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, content in files.items():
        (target / name).write_text(dumps(content), encoding="utf-8")
    print(f"wrote {len(files)} files to {target}/")


if __name__ == "__main__":
    main()
