"""The lead's private stream on Bybit V5: every item of an `execution` (or `execution.fast`) frame
that moves the position (Trade, BustTrade, AdlTrade) becomes a `LeadFill`, decoded from the raw
message strings (exact decimals) inside ccxt's own message handler, so none waits in ccxt's cache.
Bybit has no listenKey: a session ends only when the socket does."""

from __future__ import annotations

from typing import Any

from bot.venues.base import StreamDecoder, StreamEvent
from bot.venues.bybit.decode import fill_from_execution

EXECUTION_TOPICS = frozenset({"execution", "execution.fast", "execution.linear"})


def decoder(lead: str, exchange: Any) -> StreamDecoder:
    def decode(message: dict[str, Any]) -> StreamEvent:
        if message.get("topic") not in EXECUTION_TOPICS:
            return None
        fills = []
        for item in message.get("data") or []:
            if isinstance(item, dict) and (fill := fill_from_execution(lead, exchange, item, "ws")):
                fills.append(fill)
        return tuple(fills) if fills else None

    return decode
