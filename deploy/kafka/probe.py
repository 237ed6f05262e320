"""Readiness probe for the local Kafka broker, standard library only.

Sends ApiVersions (v0) and then Metadata (v4, no topics) over a raw socket and succeeds once the
broker lists at least one live broker (or --brokers N), i.e. it has joined the KRaft quorum and
is unfenced (and so have the others of a cluster).

    python3 probe.py HOST:PORT [--wait SECONDS] [--pid PID] [--brokers N]

Exit 0: ready. Exit 1: not ready (after --wait seconds). Exit 2: the --pid process died.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import time

API_METADATA = 3
API_VERSIONS = 18
METADATA_VERSION = 4
CLIENT_ID = b"fx-probe"


def _request(
    sock: socket.socket, api_key: int, version: int, correlation_id: int, body: bytes
) -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation_id, len(CLIENT_ID)) + CLIENT_ID
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _read_exact(sock, 4))[0]
    response = _read_exact(sock, size)
    if struct.unpack(">i", response[:4])[0] != correlation_id:
        raise ConnectionError("correlation id mismatch")
    return response[4:]


def _read_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        chunks += chunk
    return bytes(chunks)


def _metadata_version_range(body: bytes) -> tuple[int, int] | None:
    error_code, count = struct.unpack(">hi", body[:6])
    if error_code != 0:
        raise ConnectionError(f"ApiVersions error {error_code}")
    for i in range(count):
        api_key, low, high = struct.unpack(">hhh", body[6 + 6 * i : 12 + 6 * i])
        if api_key == API_METADATA:
            return low, high
    return None


def live_brokers(host: str, port: int, timeout: float = 2.0) -> int:
    """Number of live brokers in the cluster metadata; raises OSError when unreachable."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        versions = _metadata_version_range(_request(sock, API_VERSIONS, 0, 1, b""))
        if versions is None or not versions[0] <= METADATA_VERSION <= versions[1]:
            raise ConnectionError(f"broker does not serve Metadata v{METADATA_VERSION}: {versions}")
        # topics: empty array (not null, which would mean all); allow_auto_topic_creation: false
        body = _request(sock, API_METADATA, METADATA_VERSION, 2, struct.pack(">ib", 0, 0))
        _throttle_ms, broker_count = struct.unpack(">ii", body[:8])
        return int(broker_count)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="HOST:PORT")
    parser.add_argument("--wait", type=float, default=0.0, help="keep trying this many seconds")
    parser.add_argument("--pid", type=int, help="give up as soon as this process exits")
    parser.add_argument("--brokers", type=int, default=1, help="live brokers to wait for")
    args = parser.parse_args()
    host, _, port = args.address.rpartition(":")

    deadline = time.monotonic() + args.wait
    while True:
        try:
            if live_brokers(host, int(port)) >= max(args.brokers, 1):
                return 0
        except (OSError, struct.error):
            pass
        if args.pid is not None and not _alive(args.pid):
            return 2
        if time.monotonic() >= deadline:
            return 1
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
