"""Commands for audit: ``history``, ``export``, ``replay``, ``verify``, ``head``, ``follow``."""

from __future__ import annotations

from typing import Any


def register(commands: Any) -> None:
    """Add this module's commands to the parser's subcommands."""
    del commands
