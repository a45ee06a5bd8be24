"""Structured logging: JSON lines for journald, a readable console on a terminal, and a
redaction processor that keeps secrets out of every line.

Redaction runs right after the context merge and once more after exception formatting, so a
secret that reaches a log through an exception text (ccxt puts the full signed URL and the response
body into its messages) is scrubbed as well. Standard-library loggers (ccxt, aiohttp, asyncio) are
routed through the same chain.

Bound context keys used across the engine: lead, follower, trade_id, client_order_id, symbol.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from bot.core.redaction import MASK, SECRET_KEY, redact_text

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS |= {"error": logging.ERROR, "critical": logging.CRITICAL}


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY.search(key.lower().replace("_", "").replace("-", "")))


def _redact_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {
            k: (MASK if _is_secret_key(k) and v is not None else _redact_value(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    # Exceptions, dataclasses and anything else: render now, so the renderer never sees the raw object.
    return redact_text(str(value))


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: replace secret values in every field with "***"."""
    for key, value in event_dict.items():
        if key == "exc_info":
            continue  # formatted (and then redacted again) by format_exc_info
        if _is_secret_key(key) and value is not None:
            event_dict[key] = MASK
        else:
            event_dict[key] = _redact_value(value)
    return event_dict


def _redact_exception(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    for key in ("exception", "stack"):
        if isinstance(event_dict.get(key), str):
            event_dict[key] = redact_text(event_dict[key])
    return event_dict


def _lead_with_essentials(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """timestamp, level and event first, so a JSON line reads well in journalctl too."""
    head = {k: event_dict.pop(k) for k in ("timestamp", "level", "event") if k in event_dict}
    return {**head, **event_dict}


def _pre_chain() -> list[Processor]:
    return [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        _redact_exception,
        _lead_with_essentials,
    ]


def _add_component(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if record is not None:
        event_dict["component"] = record.name
    return event_dict


class _StdlibHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marker so reconfiguring replaces our handler and leaves others alone."""


def configure_logging(
    level: str = "info", json: bool | None = None, stream: TextIO | None = None, *, cache: bool = False
) -> None:
    """JSON lines (one event per line) when `json` is True or, when None, when `stream` is not a
    terminal; a console renderer otherwise. Safe to call again (tests, reloads). `cache=True`
    (the daemon, configured once) makes each logger resolve its configuration once instead of on
    every event, which matters on the per-order path."""
    out = stream if stream is not None else sys.stdout
    if json is None:
        json = not (hasattr(out, "isatty") and out.isatty())
    numeric = _LEVELS.get(level.lower())
    if numeric is None:
        raise ValueError(f"logging.level: {level!r} is not one of {', '.join(_LEVELS)}")
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=hasattr(out, "isatty") and out.isatty())
    )
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, redact, *_pre_chain(), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=cache,
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
    handler = _StdlibHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_add_component, redact, *_pre_chain()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root.addHandler(handler)
    root.setLevel(numeric)


def reset_logging() -> None:
    """Undo configure_logging (tests): structlog defaults, our stdlib handler removed."""
    structlog.reset_defaults()
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)


def get_logger(name: str, **bound: Any) -> FilteringBoundLogger:
    """A logger carrying `component=name` and the given context. Resolved lazily, so a module-level
    logger created before configure_logging still uses the final configuration."""
    logger: FilteringBoundLogger = structlog.get_logger(component=name, **bound)
    return logger


def bind_context(**values: Any) -> Callable[[], None]:
    """Bind context for the current task (contextvars); returns a function that unbinds it."""
    tokens = structlog.contextvars.bind_contextvars(**values)
    return lambda: structlog.contextvars.reset_contextvars(**tokens)


__all__ = [
    "MASK",
    "bind_context",
    "configure_logging",
    "get_logger",
    "redact",
    "redact_text",
    "reset_logging",
]
