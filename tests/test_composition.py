"""The composition root: importing a service builds nothing (no Redis client, no engine, no
Kafka client, no settings read); `build(settings)` is where an app and its parts are made."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from fastapi import FastAPI

SERVICES = ["referral_binding", "qualification", "commission", "payout"]

_PROBE = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    import aiokafka, redis, sqlalchemy
    import fx_common.settings as settings

    built = []

    def refuse(what):
        def constructor(*args, **kwargs):
            built.append(what)
            raise RuntimeError(f"{what} built at import")
        return constructor

    redis.Redis.__init__ = refuse("redis client")
    redis.Redis.from_url = classmethod(lambda cls, *a, **k: refuse("redis client")())
    sqlalchemy.create_engine = refuse("engine")
    aiokafka.AIOKafkaConsumer.__init__ = refuse("kafka consumer")
    aiokafka.AIOKafkaProducer.__init__ = refuse("kafka producer")
    settings.ServiceSettings.__init__ = refuse("settings")
    package = importlib.import_module(sys.argv[1])
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if ".alembic" not in module.name:
            importlib.import_module(module.name)
    print("built:", built)
    """
)


@pytest.mark.parametrize("package", SERVICES)
def test_importing_a_service_builds_nothing(package: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, package], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("built: []")


@pytest.mark.parametrize("package", SERVICES)
def test_build_makes_the_app_from_the_settings_given(package: str) -> None:
    app_module = __import__(f"{package}.app", fromlist=["build"])
    configured = app_module.SPEC.settings_cls
    settings = configured(
        database_url="sqlite://",
        redis_url="",
        http_port=18999,
        jwt_secret="composition-test-secret-32-bytes!!",
    )
    app = app_module.build(settings)
    assert isinstance(app, FastAPI)
    runtime = app.state.runtime
    assert runtime.settings is settings and runtime.spec.name == package.replace("_", "-")
