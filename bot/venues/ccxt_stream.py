"""ccxt.pro plumbing every venue's stream shares: seeing each decoded websocket message inside
ccxt's own handler, and the connection's liveness (connected, last pong)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def install_hook(exchange: Any, on_message: Callable[[dict[str, Any]], None]) -> None:
    """Have `on_message` see every decoded websocket message before ccxt processes it, so a fill is
    handed on the moment its frame is parsed instead of waiting in ccxt's cache for a pending watch
    call (see docs/architecture.md, "Lead feed").

    Must be called before the first watch call: ccxt binds `handle_message` when it creates the
    websocket client."""
    original = exchange.handle_message

    def handle_message(client: Any, message: Any) -> Any:
        if isinstance(message, dict):
            on_message(message)
        return original(client, message)

    exchange.handle_message = handle_message


def last_pong_ms(exchange: Any) -> int | None:
    """The latest pong any of the exchange's websocket clients received (ccxt pings on keepAlive)."""
    pongs = [c.lastPong for c in getattr(exchange, "clients", {}).values() if getattr(c, "lastPong", None)]
    return max(pongs) if pongs else None


def is_connected(exchange: Any) -> bool:
    return any(
        getattr(c, "isConnected", False) and not c.closed() for c in getattr(exchange, "clients", {}).values()
    )
