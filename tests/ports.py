"""Free ports in a range of this project's own (its observability tests use 38100-39189), so a
test never shares a port with a process the OS gave an ephemeral one."""

from __future__ import annotations

import socket


def free_ports(count: int, low: int, high: int) -> list[int]:
    """`count` distinct ports in [low, high) that nothing listens on right now."""
    found: list[int] = []
    for port in range(low, high):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError(f"fewer than {count} free ports in {low}-{high}")


def free_port(low: int, high: int) -> int:
    return free_ports(1, low, high)[0]
