"""The Alembic environment every service's history shares (see `fx_common.migrations`)."""

from alembic import context

from fx_common.migrations import run_environment

run_environment(context)
