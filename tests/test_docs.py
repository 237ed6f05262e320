"""docs/ names everything the code exposes, and nothing the code no longer has.

Topics, event types (with their data fields), HTTP routes and `FX_*` settings are read from
the code itself: the contract registry, each service's FastAPI app (built, never started: no
broker, no store, no Redis), the settings classes and every place that reads an `FX_*`
variable. Each failure says what is missing and which section of which page to add it to
(docs/README.md, "Keeping these pages true"). No infrastructure needed.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import typer.main
from fastapi.routing import iter_route_contexts
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from typer.core import TyperGroup

from fx_common.contracts import topics as topic_names
from fx_common.contracts.registry import EVENT_MODELS, IGNORED_TYPES, TOPIC_EVENT_TYPES
from fx_common.http import create_app
from fx_common.runtime import ServiceRuntime
from fxctl.cli import app as fxctl_app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONTRACT = DOCS / "contract.md"
ARCHITECTURE = DOCS / "architecture.md"
PACKAGES = [
    "fx_common", *(s.replace("-", "_") for s in topic_names.SERVICES), "fxctl", "fx_console",
]  # fmt: skip
SKIPPED_DIRS = {
    ".git", ".venv", "var", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache",
    ".pytest_cache", "lib",
}  # fmt: skip


# ---------------------------------------------------------------- markdown sections


@dataclass(frozen=True)
class Section:
    titles: tuple[str, ...]  # the heading and its parents, outermost first
    text: str  # the heading's body, subsections included


def sections(page: Path) -> list[Section]:
    lines = page.read_text(encoding="utf-8").splitlines()
    heads: list[tuple[int, int, str]] = []  # (line, level, title)
    fenced = False
    for number, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"(#{1,6})\s+(.*)", line)
        if match:
            heads.append((number, len(match[1]), match[2].strip()))
    found = []
    stack: list[tuple[int, str]] = []
    for index, (start, level, title) in enumerate(heads):
        end = next((n for n, lv, _ in heads[index + 1 :] if lv <= level), len(lines))
        stack = [*(h for h in stack if h[0] < level), (level, title)]
        found.append(Section(tuple(t for _, t in stack), "\n".join(lines[start:end])))
    return found


def section(page: Path, *path: str) -> str:
    """The body of the section whose headings start with `path` (each a heading prefix)."""
    for candidate in sections(page):
        inner = candidate.titles[-len(path) :]
        if len(inner) < len(path):
            continue
        if all(t.startswith(p) for t, p in zip(inner, path, strict=True)):
            return candidate.text
    where = " › ".join(path)
    pytest.fail(f"{page.relative_to(ROOT)} has no section {where!r}: add it (docs/README.md)")


def backticked(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


# ---------------------------------------------------------------- topics and event types


def code_topics() -> set[str]:
    named = {
        value
        for value in vars(topic_names).values()
        if isinstance(value, str) and re.fullmatch(r"[a-z]+\.[a-z0-9_.-]+\.v\d+", value)
    }
    dlqs = {topic_names.dlq_topic(service) for service in topic_names.SERVICES}
    return named | dlqs | set(TOPIC_EVENT_TYPES)


def test_every_topic_is_documented() -> None:
    documented = backticked(section(CONTRACT, "Topics"))
    missing = sorted(code_topics() - documented)
    assert not missing, (
        f"docs/contract.md, section 'Topics', lacks {missing}: add a row per topic "
        "(topic, Kafka key, producer, consumers)"
    )
    listed = {t for t in documented if re.fullmatch(r"(mall|fx)\.[a-z0-9_.-]+\.v\d+", t)}
    stale = sorted(listed - code_topics())
    assert not stale, f"docs/contract.md, section 'Topics', names topics the code lacks: {stale}"


def type_rows(topic: str) -> dict[str, str]:
    """The rows of the event-type table under the heading naming `topic`, by ce_type."""
    text = section(CONTRACT, "Event types", f"`{topic}`")
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\|\s*`([a-z]+\.[a-z0-9_.]+)`\s*\|", line)
        if match:
            rows[match[1]] = line
    return rows


def wire_fields(ce_type: str) -> list[str]:
    model = EVENT_MODELS[ce_type]
    return [field.alias or name for name, field in model.model_fields.items()]


def test_every_event_type_and_field_is_documented() -> None:
    problems = []
    on_topics = {t for ts in TOPIC_EVENT_TYPES.values() for t in ts}
    unregistered = sorted(set(EVENT_MODELS) - on_topics)
    assert not unregistered, f"event types with a model but no topic: {unregistered}"
    for topic, ce_types in TOPIC_EVENT_TYPES.items():
        rows = type_rows(topic)
        where = f"docs/contract.md › Event types › `{topic}`"
        for ce_type in ce_types:
            if ce_type not in rows:
                problems.append(f"{where}: no row for `{ce_type}` (fields {wire_fields(ce_type)})")
                continue
            missing = [f for f in wire_fields(ce_type) if f not in backticked(rows[ce_type])]
            if missing:
                problems.append(f"{where}: the row of `{ce_type}` lacks the fields {missing}")
        stale = sorted(set(rows) - set(ce_types))
        if stale:
            problems.append(f"{where}: rows for types the registry does not have: {stale}")
    assert not problems, "\n".join(problems)


def test_the_types_ignored_on_purpose_are_documented() -> None:
    documented = backticked(CONTRACT.read_text(encoding="utf-8"))
    missing = sorted(t for ts in IGNORED_TYPES.values() for t in ts if t not in documented)
    assert not missing, (
        f"docs/contract.md does not name the types ignored on purpose {missing}: list them "
        "where the envelope section says which types are ignored"
    )


# ---------------------------------------------------------------- HTTP routes


def service_routes(service: str) -> set[str]:
    """`METHOD /path` of every route of the service's app, built without starting it."""
    spec = importlib.import_module(f"{service.replace('-', '_')}.app").SPEC
    runtime = ServiceRuntime(spec, spec.settings_cls(database_url="sqlite://", env="test"))
    try:
        app = create_app(spec, runtime)
        routes = set()
        for route in iter_route_contexts(app.routes):
            methods = set(route.methods or ())
            if "GET" in methods:
                methods.discard("HEAD")  # implied by GET
            routes |= {f"{method} {route.path}" for method in methods}
        return routes
    finally:
        runtime.engine.dispose()


def documented_routes(text: str) -> set[str]:
    verbs = "GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS"
    return {t for t in backticked(text) if re.fullmatch(rf"({verbs}) /\S*", t)}


@pytest.mark.parametrize("service", topic_names.SERVICES)
def test_every_route_is_documented(service: str) -> None:
    common = documented_routes(section(CONTRACT, "HTTP API", "Every service"))
    own = documented_routes(section(CONTRACT, "HTTP API", service))
    served = service_routes(service)
    missing = sorted(served - common - own)
    assert not missing, (
        f"docs/contract.md › HTTP API › {service} lacks the routes {missing}: add a row "
        "per route (`METHOD /path`, who may call it, what it does); routes every service "
        "serves go under 'Every service'"
    )
    stale = sorted(own - served)
    assert not stale, f"docs/contract.md › HTTP API › {service} names routes it lacks: {stale}"


def test_shared_routes_are_served_by_every_service() -> None:
    common = documented_routes(section(CONTRACT, "HTTP API", "Every service"))
    for service in topic_names.SERVICES:
        absent = sorted(common - service_routes(service))
        assert not absent, f"'Every service' lists {absent}, which {service} does not serve"


# ---------------------------------------------------------------- FX_* settings


def walk(package: str) -> Iterator[ModuleType]:
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        yield importlib.import_module(info.name)


def subclasses(cls: type[BaseSettings]) -> Iterator[type[BaseSettings]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def settings_class_variables() -> dict[str, str]:
    """`FX_*` names the settings classes read, with the class that reads each."""
    for package in PACKAGES:
        for _ in walk(package):
            pass
    found: dict[str, str] = {}
    for cls in subclasses(BaseSettings):
        if cls.__module__.split(".")[0] not in PACKAGES:
            continue
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names = [c for c in alias.choices if isinstance(c, str)]
            else:
                names = [alias] if isinstance(alias, str) else [prefix + name]
            for env in (n.upper() for n in names):
                if env.startswith("FX_"):
                    found.setdefault(env, f"{cls.__module__}.{cls.__qualname__}")
    return found


PY_READ = re.compile(
    r"""(?:environ(?:\.get)?\(|environ\[|getenv\(|envvar=)\s*["'](FX_[A-Z0-9_]+)"""
)
SHELL_READ = re.compile(r"\$\{(FX_[A-Z0-9_]+):?[-=?+]")
SHELL_LIKE = {"run", "Dockerfile", "Containerfile"}
MAKE_READ = re.compile(r"^(FX_[A-Z0-9_]+)\s*\?=", re.MULTILINE)


def project_files() -> Iterator[Path]:
    for directory, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".tox")]
        for name in files:
            yield Path(directory) / name


def script_variables() -> dict[str, str]:
    """`FX_*` names read by Python (`os.environ`, typer `envvar`), shell, compose or make."""
    found: dict[str, str] = {}
    for path in project_files():
        if path == Path(__file__):
            continue
        if path.suffix == ".py":
            pattern = PY_READ
        elif path.suffix in {".sh", ".yml", ".yaml"} or path.name in SHELL_LIKE:
            pattern = SHELL_READ  # scripts, compose files and Dockerfiles: ${FX_…:-default}
        elif path.name == "Makefile":
            pattern = MAKE_READ
        else:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.setdefault(match[1], f"{path.relative_to(ROOT)}:{line}")
    return found


def test_every_setting_is_documented() -> None:
    names = backticked(section(ARCHITECTURE, "Configuration"))
    documented = {t for t in names if t.startswith("FX_")}
    read = {**script_variables(), **settings_class_variables()}
    missing = {name: where for name, where in sorted(read.items()) if name not in documented}
    assert not missing, "docs/architecture.md, section 'Configuration', lacks:\n" + "\n".join(
        f"  `{name}` (read by {where}): add a row (variable, default, meaning) to the table "
        "of its service, 'Every service', or 'Local infrastructure, tests and tools'"
        for name, where in missing.items()
    )
    stale = sorted(documented - set(read))
    assert not stale, f"docs/architecture.md › Configuration names variables nothing reads: {stale}"


def test_the_settings_scan_finds_what_it_should() -> None:
    """Guards the scan itself: known readers of each kind are found."""
    classes = settings_class_variables()
    assert classes["FX_JWT_SECRET"] == "fx_common.settings.ServiceSettings"
    assert "FX_KAFKA_BOOTSTRAP_SERVERS" in classes  # an alias choice
    assert classes["FX_SETTLEMENT_HOLD"].startswith("commission.")
    scripts = script_variables()
    assert {"FX_VAR", "FX_KAFKA_PORT", "FX_TEST_POSTGRES_URL"} <= set(scripts)


# ---------------------------------------------------------------- commands


def console_scripts() -> dict[str, str]:
    """Every console script of the workspace's packages, with its pyproject."""
    found: dict[str, str] = {}
    for pyproject in sorted(ROOT.glob("*/*/pyproject.toml")):
        scripts = tomllib.loads(pyproject.read_text()).get("project", {}).get("scripts", {})
        found |= {name: str(pyproject.relative_to(ROOT)) for name in scripts}
    return found


def test_every_console_script_is_documented() -> None:
    documented = backticked(ARCHITECTURE.read_text(encoding="utf-8"))
    scripts = console_scripts()
    assert "fx-payout-reconcile" in scripts and "fxctl" in scripts
    missing = {name: where for name, where in scripts.items() if name not in documented}
    assert not missing, (
        f"docs/architecture.md does not name the console scripts {missing}: add them to the "
        "services table in 'The shape' (a service's) or where the tool is described"
    )


def test_every_fxctl_verb_is_documented() -> None:
    group = typer.main.get_command(fxctl_app)
    assert isinstance(group, TyperGroup)
    verbs = sorted(group.commands)
    assert "trace" in verbs
    pages = [ROOT / "README.md", *DOCS.glob("*.md")]
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    missing = [verb for verb in verbs if not re.search(rf"fxctl {verb}\b", text)]
    assert not missing, (
        f"fxctl verbs {missing} are named nowhere in README.md or docs/: add a row to the "
        "README's fxctl table ('For operators')"
    )


# ---------------------------------------------------------------- links between pages


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(s.titles[-1]) for s in sections(page)}


def test_links_between_pages_resolve() -> None:
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # an external URL
            file, _, anchor = target.partition("#")
            resolved = (page.parent / file).resolve() if file else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)


REPO_PATH = re.compile(r"(?:deploy|libs|services|tools|tests|contracts|demo|benchmarks|docs)/\S*")


def made_at_run_time(path: str) -> bool:
    """Ignored by git (e.g. `benchmarks/results/`, `deploy/kafka/lib/`): a clean clone lacks
    it until a command makes it."""
    for candidate in {path, path.rstrip("/") + "/"}:  # a directory pattern needs the slash
        ignored = subprocess.run(["git", "check-ignore", "-q", candidate], cwd=ROOT, check=False)
        if ignored.returncode == 0:
            return True
    return False


def test_paths_named_in_the_docs_exist() -> None:
    """A file or directory of the repository named in backticks exists (patterns aside)."""
    missing = []
    readmes = [ROOT / "README.md", *sorted(ROOT.glob("deploy/*/README.md"))]
    for page in [*readmes, *sorted(DOCS.glob("*.md"))]:
        for token in backticked(page.read_text(encoding="utf-8")):
            match = REPO_PATH.match(token)
            if match is None or re.search(r"[<>*{}…|$]", match[0]):
                continue
            path = match[0].rstrip(".,;:")
            if not (ROOT / path).exists() and not made_at_run_time(path):
                missing.append(f"{page.relative_to(ROOT)}: `{token}`")
    assert not missing, "paths named in the docs that the repository lacks:\n" + "\n".join(missing)


# ---------------------------------------------------------------- no documentation outside


OUTSIDE = re.compile(r"\.\./shared/|/work/shared|\b(?:DOMAIN|CONTRACTS|ARCHITECTURE)\.md\b")
TEXT_SUFFIXES = {".py", ".md", ".sh", ".yaml", ".yml", ".toml", ".json", ".txt", ".cfg"}


def test_nothing_points_to_documentation_outside_the_repository() -> None:
    offenders = []
    for path in project_files():
        if path == Path(__file__):
            continue
        if path.suffix not in TEXT_SUFFIXES and path.name not in {"Makefile", "Dockerfile", "run"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, (
        "the project's documentation is docs/ (domain.md, contract.md, architecture.md); "
        "point there instead:\n" + "\n".join(offenders)
    )
