"""Backward compatibility of the contract, as a schema registry checks it in BACKWARD mode.

A consumer built against the released schema must keep working on what producers send under
the new one. `breaking_changes(released, current)` lists what breaks that:
- a field removed or renamed (a renamed field is a removed one plus a new one);
- a new required field;
- a type narrowed: a JSON type no longer accepted (`null` included: an optional field made
  mandatory), a bound tightened (minimum, maximum, lengths, item counts), a pattern or
  format added or changed, `additionalProperties` closed;
- an enumeration value removed (`enum` / `const`).

Additive changes (a new optional field, a wider bound, a new enumeration value) pass. A
change that breaks ships as a new type and topic (`.v2`), published next to `.v1` during the
migration (see README "Evolving the contract"). `python -m fx_common.contracts.compat` checks
the checked-in `contracts/` against `contracts/released/`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["RELEASED_DIR", "breaking_changes", "check_directory", "main"]

RELEASED_DIR = "released"
Schema = dict[str, Any]
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_EXACT = ("pattern", "format", "multipleOf")


def breaking_changes(released: Schema, current: Schema) -> list[str]:
    """What in `current` breaks a consumer of `released` (empty: backward compatible)."""
    problems: list[str] = []
    _compare(released, current, _Roots(released, current), "", problems)
    return problems


class _Roots:
    def __init__(self, old: Schema, new: Schema) -> None:
        self.old, self.new = old, new


def _resolve(node: Schema, root: Schema) -> Schema:
    seen = 0
    while "$ref" in node and str(node["$ref"]).startswith("#/") and seen < 32:
        target: Any = root
        for part in str(node["$ref"])[2:].split("/"):
            target = target[part]
        node, seen = target, seen + 1
    return node


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _alternatives(node: Schema, root: Schema) -> dict[str, Schema]:
    """The schema split by JSON type (`any` when it does not restrict the type)."""
    node = _resolve(node, root)
    if "anyOf" in node or "oneOf" in node:
        merged: dict[str, Schema] = {}
        alternatives: list[Schema] = node.get("anyOf") or node.get("oneOf") or []
        for alternative in alternatives:
            merged.update(_alternatives(alternative, root))
        return merged
    if "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        return {t: node for t in types}
    values = _values(node)
    if values is not None:
        return {_json_type(v): node for v in values}
    return {"any": node}


def _values(node: Schema) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return list(node["enum"])
    return None


def _compare(old: Schema, new: Schema, roots: _Roots, path: str, problems: list[str]) -> None:
    old_alts, new_alts = _alternatives(old, roots.old), _alternatives(new, roots.new)
    if "any" in new_alts:
        return
    where = path or "<data>"
    for json_type, old_node in old_alts.items():
        new_node = new_alts.get(json_type)
        if new_node is None and json_type == "integer":
            new_node = new_alts.get("number")
        if new_node is None:
            accepted = "any type" if json_type == "any" else json_type
            problems.append(f"{where}: type narrowed ({accepted} no longer accepted)")
            continue
        _compare_node(old_node, new_node, roots, path, problems)


def _compare_node(old: Schema, new: Schema, roots: _Roots, path: str, problems: list[str]) -> None:
    where = path or "<data>"
    old_values, new_values = _values(old), _values(new)
    if new_values is not None:
        if old_values is None:
            problems.append(f"{where}: type narrowed (now restricted to {new_values})")
        else:
            removed = [v for v in old_values if v not in new_values]
            if removed:
                problems.append(f"{where}: enum value removed {removed}")
    for bound in _LOWER_BOUNDS:
        if bound in new and (bound not in old or new[bound] > old[bound]):
            problems.append(f"{where}: type narrowed ({bound} {old.get(bound)} → {new[bound]})")
    for bound in _UPPER_BOUNDS:
        if bound in new and (bound not in old or new[bound] < old[bound]):
            problems.append(f"{where}: type narrowed ({bound} {old.get(bound)} → {new[bound]})")
    for keyword in _EXACT:
        if keyword in new and new[keyword] != old.get(keyword):
            problems.append(f"{where}: type narrowed ({keyword} {new[keyword]!r})")
    if "items" in old and "items" in new:
        _compare(old["items"], new["items"], roots, f"{path}[]", problems)
    _compare_object(old, new, roots, path, problems)


def _compare_object(
    old: Schema, new: Schema, roots: _Roots, path: str, problems: list[str]
) -> None:
    prefix = f"{path}." if path else ""
    old_props: Schema = old.get("properties", {})
    new_props: Schema = new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{prefix}{name}: field removed (or renamed)")
        else:
            _compare(old_prop, new_props[name], roots, f"{prefix}{name}", problems)
    for name in new.get("required", []):
        if name not in old.get("required", []):
            problems.append(f"{prefix}{name}: new required field")
    if new.get("additionalProperties") is False and old.get("additionalProperties") is not False:
        problems.append(f"{path or '<data>'}: type narrowed (additionalProperties closed)")


def check_directory(contracts: Path) -> dict[str, list[str]]:
    """Released schema file → what breaks it in `contracts/` (a missing file: type removed)."""
    report: dict[str, list[str]] = {}
    for released in sorted((contracts / RELEASED_DIR).glob("*.json")):
        current = contracts / released.name
        if not current.exists():
            report[released.name] = ["type removed"]
            continue
        problems = breaking_changes(_load(released), _load(current))
        if problems:
            report[released.name] = problems
    return report


def _load(path: Path) -> Schema:
    content: Schema = json.loads(path.read_text(encoding="utf-8"))
    return content


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    report = check_directory(Path(args[0] if args else "contracts"))
    for name, problems in report.items():
        for problem in problems:
            print(f"{name}: {problem}")
    if report:
        sys.exit(1)
    print("contracts/: backward compatible with contracts/released/")


if __name__ == "__main__":
    main()
