"""Where fxctl writes: rich consoles (wide when piped, so lines are not cut) and errors."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

PIPED_WIDTH = 200


def console() -> Console:
    """A console on the current stdout (created per command, so test runners capture it)."""
    return Console(width=None if sys.stdout.isatty() else PIPED_WIDTH, highlight=False)


def err_console() -> Console:
    return Console(stderr=True, width=None if sys.stderr.isatty() else PIPED_WIDTH)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (2: bad input, 1: failure)."""
    err_console().print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def emit_json(obj: Any) -> None:
    """One JSON object per line, for piping into jq."""
    typer.echo(json.dumps(obj, ensure_ascii=False, default=str))
