"""What several commands share."""

from __future__ import annotations

import sys

from bot.config.models import AppConfig, ConfigError, load_config

EXIT_CONFIG = 2


def load_or_report(path: str) -> AppConfig | None:
    """The validated config, or None after printing every problem with its key path."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"copybot: invalid config: {exc}", file=sys.stderr)
        return None
