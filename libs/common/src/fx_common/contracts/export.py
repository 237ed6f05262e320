"""Export the JSON Schema of every event type: `python -m fx_common.contracts.export [DIR]`.

Writes `<ce_type>.json` per type and `index.json` (topic → type → key and schema file) into
DIR (default `contracts/`). Each schema's `$id` and `title` are the `ce_type`;
`x-topic` names its topic and `x-key` its Kafka key: `{"field": <data field>}` or, for a
constant key, `{"const": <key>}`. The output is deterministic so the checked-in copy can be
compared with a fresh export.
"""

import json
import sys
from pathlib import Path
from typing import Any

from fx_common.contracts.registry import (
    EVENT_KEY_FIELD,
    EVENT_MODELS,
    EVENT_TOPIC,
    TOPIC_CONSTANT_KEY,
    TOPIC_EVENT_TYPES,
)

__all__ = ["EXPORT_COMMAND", "dumps", "export_schemas", "main"]

EXPORT_COMMAND = "uv run python -m fx_common.contracts.export contracts/"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
INDEX_FILE = "index.json"


def _key_spec(ce_type: str) -> dict[str, str]:
    field = EVENT_KEY_FIELD.get(ce_type)
    if field is not None:
        return {"field": field}
    return {"const": TOPIC_CONSTANT_KEY[EVENT_TOPIC[ce_type]]}


def schema_for(ce_type: str) -> dict[str, Any]:
    """The JSON Schema of the `data` of `ce_type`, annotated with its topic and key."""
    schema = EVENT_MODELS[ce_type].model_json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": ce_type,
        **schema,
        "title": ce_type,
        "x-model": EVENT_MODELS[ce_type].__name__,
        "x-topic": EVENT_TOPIC[ce_type],
        "x-key": _key_spec(ce_type),
    }


def export_schemas() -> dict[str, dict[str, Any]]:
    """File name → content of every file the export writes."""
    files: dict[str, dict[str, Any]] = {
        f"{ce_type}.json": schema_for(ce_type) for ce_type in EVENT_MODELS
    }
    files[INDEX_FILE] = {
        "topics": {
            topic: {
                "types": {
                    ce_type: {"key": _key_spec(ce_type), "schema": f"{ce_type}.json"}
                    for ce_type in ce_types
                }
            }
            for topic, ce_types in TOPIC_EVENT_TYPES.items()
        }
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
