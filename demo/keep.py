"""`make demo KEEP=1`: after the scenario, the cluster and the console stay up until Ctrl-C,
with the URLs and a sign-in for an operator and for the scenario's distributors."""

from __future__ import annotations

import asyncio
import signal
import socket

from demo.cluster import Cluster
from fx_common.auth import issue_token

SIGN_INS = (("ops-1", "ops"), ("u-lin", "distributor"), ("u-zhao", "distributor"))
CONSOLE_PORT = 8105


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def sign_in_lines(cluster: Cluster, url: str) -> list[str]:
    lines = [
        f"\nThe console runs on {url} (the ops console: {url}/ops; the distributor centre: "
        f"{url}/me).",
        f"Sign in on {url}/signin — local sign-in (FX_ENV=test): a user id and its role:",
    ]
    for user, role in SIGN_INS:
        lines.append(f"  {user:8} as {role}")
    lines.append("or paste one of these tokens (8 hours) into the token form:")
    for user, role in SIGN_INS:
        token = issue_token(cluster.jwt_secret, user, role, ttl_s=8 * 3600)
        lines.append(f"  {user} ({role}): {token}")
    lines.append("The services' APIs: " + ", ".join(
        f"{name} http://127.0.0.1:{port}" for name, port in cluster.ports.items()
    ))  # fmt: skip
    lines.append("Ctrl-C stops the console and the services.")
    return lines


async def stay_up(cluster: Cluster) -> None:
    port = CONSOLE_PORT if port_free(CONSOLE_PORT) else None
    url = cluster.start_console(port)
    print("\n".join(sign_in_lines(cluster, url)), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
