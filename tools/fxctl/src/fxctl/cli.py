"""fxctl: the engineer's CLI (verbs are added in fxctl.commands)."""

import typer

app = typer.Typer(help="fenxiao operator and engineer CLI", no_args_is_help=True)
