"""What several commands share. Kept light (no config or engine import at module level): the CLI
imports it for every command, `--help` included."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config.models import AppConfig

EXIT_CONFIG = 2
EXIT_FAILURE = 1


class CommandError(Exception):
    """An expected failure: printed as one line on stderr (`copybot <command>: <message>`), no
    traceback, and the process exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_or_report(path: str) -> AppConfig | None:
    """The validated config, or None after printing every problem with its key path."""
    from bot.config.models import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"copybot: invalid config: {exc}", file=sys.stderr)
        return None
