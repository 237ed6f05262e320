"""Start the four services as real processes, isolated by a topic namespace."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from fx_common.contracts.topics import SERVICES

REPO = Path(__file__).resolve().parents[1]
PORTS = {"referral-binding": 8101, "qualification": 8102, "commission": 8103, "payout": 8104}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    def __init__(
        self,
        bootstrap: str,
        workdir: Path,
        *,
        namespace: str = "",
        jwt_secret: str = "demo-only-secret-for-local-clusters-32b",
        port_offset: int | None = None,
        extra_env: dict[str, str] | None = None,
        database_urls: dict[str, str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.workdir = workdir
        self.namespace = namespace
        self.jwt_secret = jwt_secret
        # Free ports by default: parallel runs (CI beside a developer's cluster) never collide.
        self.ports = {
            s: p + port_offset if port_offset is not None else free_port() for s, p in PORTS.items()
        }
        self.extra_env = extra_env or {}
        self.database_urls = database_urls or {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    def database_url(self, service: str) -> str:
        default = f"sqlite:///{self.workdir / (service.replace('-', '_') + '.db')}"
        return self.database_urls.get(service, default)

    def start(self, service: str, **overrides: str) -> None:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.database_url(service),
            "FX_TOPIC_NAMESPACE": self.namespace,
            "FX_HTTP_PORT": str(self.ports[service]),
            "FX_JWT_SECRET": self.jwt_secret,
            "FX_KAFKA_SESSION_TIMEOUT_MS": "6000",
            # Local runs upgrade their stores at start (production runs `fx-<service> migrate`).
            "FX_MIGRATE": "auto",
            **self.extra_env,
            **overrides,
        }
        log = self._logs.setdefault(service, (self.workdir / f"{service}.log").open("ab"))
        self.procs[service] = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / f"fx-{service}")], env=env, stdout=log, stderr=log
        )

    def start_all(self) -> None:
        """Start the four services and wait until all are ready; on failure stop them all."""
        try:
            for service in SERVICES:
                self.start(service)
            for service in SERVICES:
                self.wait_ready(service)
        except BaseException:
            self.stop_all()
            raise

    def wait_ready(self, service: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[service]
            if proc.poll() is not None:
                raise RuntimeError(f"{service} exited ({proc.returncode}); see {self.log(service)}")
            try:
                url = f"http://127.0.0.1:{self.ports[service]}/readyz"
                with urllib.request.urlopen(url, timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise TimeoutError(f"{service} not ready after {timeout}s; see {self.log(service)}")

    def start_console(self, port: int | None = None, **overrides: str) -> str:
        """The console (fx-console) over the four services, FX_ENV=test so its local sign-in
        works; its URL once /healthz answers."""
        port = port or free_port()
        urls = {
            f"FX_{s.replace('-', '_').upper()}_URL": f"http://127.0.0.1:{p}"
            for s, p in self.ports.items()
        }
        env = {**os.environ, **urls, "FX_HTTP_PORT": str(port), "FX_JWT_SECRET": self.jwt_secret,
               "FX_ENV": "test", "FX_LOG_LEVEL": "WARNING", **overrides}  # fmt: skip
        log = self._logs.setdefault("console", (self.workdir / "console.log").open("ab"))
        self.procs["console"] = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "fx-console")], env=env, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.procs["console"].poll() is not None:
                raise RuntimeError(f"fx-console exited; see {self.log('console')}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                    return url
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise TimeoutError(f"fx-console not up after 60 s; see {self.log('console')}")

    def log(self, service: str) -> Path:
        return self.workdir / f"{service}.log"

    def kill9(self, service: str) -> None:
        self.procs[service].send_signal(signal.SIGKILL)
        self.procs[service].wait(10)

    def stop(self, service: str) -> int:
        proc = self.procs[service]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait(10)
        return proc.returncode

    def stop_all(self) -> dict[str, int]:
        codes = {s: self.stop(s) for s in list(self.procs)}
        for log in self._logs.values():
            log.close()
        return codes
