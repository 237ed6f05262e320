"""Deterministic ids: `uuid5_str(namespace, name)` is `str(uuid.uuid5(namespace, name))`,
without building a `UUID` object (the consume path derives two or three ids per event)."""

from __future__ import annotations

import hashlib
import uuid


def uuid5_str(namespace: uuid.UUID, name: str) -> str:
    """The canonical text of the version-5 UUID of `name` in `namespace`."""
    raw = bytearray(hashlib.sha1(namespace.bytes + name.encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
