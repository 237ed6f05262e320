"""The command line of a service process (`fx-<service>`):

    fx-<service> [serve]                 run the service (refuses a store behind the code)
    fx-<service> migrate                 upgrade the store (DATABASE_URL) to the code's revision
    fx-<service> migrate --check         print where the store is; exit 1 when behind
    fx-<service> migrate --wait SECONDS  wait until another process (a Job) has upgraded it
    fx-<service> revision -m MESSAGE     developers: write the next revision (autogenerate)

Exit status: 0 done, 1 behind (`--check`, `--wait` timing out), 2 the store cannot be used by
this code (a newer release's revision, a partial store) or cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from fx_common import db, migrations
from fx_common.runtime import ServiceSpec


def main(spec: ServiceSpec, argv: Sequence[str] | None = None) -> None:
    args = _parser(spec.name).parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in (None, "serve"):
        from fx_common.http import serve

        serve(spec)
        return
    history = spec.migrations
    if history is None:
        sys.exit(f"{spec.name} has no migration history")
    url = args.url or spec.settings_cls(service=spec.name).store_url()
    if args.command == "revision":
        print(f"wrote {migrations.new_revision(history, args.message, args.url)}")
        return
    engine = db.make_engine(url)
    try:
        sys.exit(_migrate(engine, history, args.check, args.wait))
    except (migrations.StoreNotReady, SQLAlchemyError) as exc:
        sys.exit(f"{spec.name} migrate: {exc}")
    finally:
        engine.dispose()


def _migrate(engine: Engine, history: migrations.History, check: bool, wait: float | None) -> int:
    where = engine.url.render_as_string(hide_password=True)
    found = migrations.status(engine, history)
    if check or wait is not None:
        deadline = time.monotonic() + (wait or 0)
        while not found.at_head and time.monotonic() < deadline:
            time.sleep(1.0)
            found = migrations.status(engine, history)
        print(f"{found.describe()} ({where})")
        return 0 if found.at_head else 1
    before = found.describe()
    found = migrations.upgrade(engine, history)
    print(f"{before} ({where}); now at revision {found.current}")
    return 0


def _parser(service: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"fx-{service}", description=f"fenxiao {service}")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the service (the default)")
    migrate = commands.add_parser(
        "migrate", help="upgrade the store to this code's revision (under the migration lock)"
    )
    checking = migrate.add_mutually_exclusive_group()
    checking.add_argument("--check", action="store_true", help="only report; exit 1 if behind")
    checking.add_argument(
        "--wait", type=float, metavar="SECONDS", help="only wait for the store to be upgraded"
    )
    migrate.add_argument("--url", help="the store (default: DATABASE_URL, as the service)")
    revision = commands.add_parser(
        "revision", help="developers: write the next revision from the models (autogenerate)"
    )
    revision.add_argument("-m", "--message", required=True)
    revision.add_argument("--url", help="compare against this store (default: scratch SQLite)")
    return parser
