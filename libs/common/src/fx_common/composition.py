"""A service's composition root: `build(settings) -> app` from its `spec_for(settings)`.

Each service's `app` module declares `spec_for(settings)` (its parts under the configured
settings) and `build(settings)` (the app: runtime, store, broker, routes). Nothing is built
at import: the module's `SPEC` (tests, tools) is the spec under the environment's settings,
built on first use (`lazy_spec`), and `main` builds the spec when the process starts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TypeVar

from fastapi import FastAPI

from fx_common.http import create_app
from fx_common.runtime import ServiceRuntime, ServiceSpec
from fx_common.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def build_app(spec_for: Callable[[S], ServiceSpec], configured: S) -> FastAPI:
    """The app of the service `spec_for` describes, configured by `configured`; nothing
    connects before the app's lifespan starts."""
    spec = spec_for(configured)
    return create_app(spec, ServiceRuntime(spec, configured))


def lazy_spec(
    spec_for: Callable[[S], ServiceSpec], settings: Callable[[], S]
) -> Callable[[str], ServiceSpec]:
    """A module `__getattr__` serving `SPEC`: the spec under `settings()`, built on first use."""
    default = cache(lambda: spec_for(settings()))

    def attribute(name: str) -> ServiceSpec:
        if name == "SPEC":
            return default()
        raise AttributeError(name)

    return attribute
