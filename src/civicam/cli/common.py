"""What every CLI command shares: settings, the hub context, the local actor, output and exit codes."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

from civicam.audit.log import Actor
from civicam.config.settings import Settings, get_settings
from civicam.context import Context, NotInitialised, open_context

# Exit codes: 0 success or accepted, 1 rejected or failed check, 2 bad usage or bad input.
OK, FAILED, BAD_INPUT = 0, 1, 2

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = BAD_INPUT) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:
        fail(f"invalid configuration: {exc}")


def context(create: bool = False) -> Context:
    try:
        return open_context(settings(), create=create)
    except NotInitialised as exc:
        fail(str(exc))


def local_actor() -> Actor:
    """The person at the hub's console; the CLI acts with admin rights on the data directory it can read."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(name=f"cli:{who}", source="local", role="admin")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
