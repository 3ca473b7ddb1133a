"""Secret option values that stay out of argv and shell history.

A secret option (``--auth-key``, ``--priv-key``, ``--community``, ``--secret``,
``--basic-password``, ``--bearer-token``, ...) takes its value as given, or:

    -            from standard input: its first line (on a terminal, a hidden prompt)
    file:PATH    the first line of the file PATH
    env:NAME     the environment variable NAME
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from kemi_stats.private_file import read_secret

__all__ = ["HELP", "secret_value"]

HELP = "('-': read stdin, file:PATH, env:NAME)"

_stdin_taken: list[str] = []


def secret_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The secret an option stands for (a click callback)."""
    if value is None:
        return None
    flag = param.opts[0] if param.opts else str(param.name)
    if value == "-":
        if _stdin_taken:
            raise click.BadParameter(
                f"standard input is already read for {_stdin_taken[0]}", param_hint=flag
            )
        _stdin_taken.append(flag)
        if sys.stdin.isatty():
            return str(click.prompt(flag.lstrip("-"), hide_input=True, err=True))
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.BadParameter("standard input is empty", param_hint=flag)
        return line
    if value.startswith("file:"):
        path = Path(value[5:]).expanduser()
        try:
            return read_secret(path)
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {path} ({exc.strerror})", param_hint=flag
            ) from None
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise click.BadParameter(f"environment variable {name} is not set", param_hint=flag)
        return os.environ[name]
    return value
