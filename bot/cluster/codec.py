"""A lead fill as the fields of a stream entry, and back: every value a string, money as the
Decimal's own text (never a float), so a shard reads exactly what the feed decoded."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from bot.core.types import LeadFill, Side


class BadEntry(ValueError):
    """A stream entry that is not a lead fill of this format: logged and acknowledged, never retried."""


@dataclass(frozen=True, slots=True)
class StreamFill:
    """A lead fill read from a lead's stream: the entry id (what is acknowledged), the fill, the
    lease epoch of the feed that published it and the publisher's wall clock (transport lag)."""

    entry_id: str
    fill: LeadFill
    epoch: int
    published_ms: int


def encode(fill: LeadFill, *, epoch: int) -> dict[str, str]:
    fields = {
        "v": "1",
        "lead": fill.lead,
        "trade_id": fill.trade_id,
        "order_id": fill.order_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": str(fill.qty),
        "price": str(fill.price),
        "ts_ms": str(fill.ts_ms),
        "source": fill.source,
        "epoch": str(epoch),
        "published_ms": str(time.time_ns() // 1_000_000),
    }
    if fill.client_order_id is not None:
        fields["client_order_id"] = fill.client_order_id
    return fields


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode(entry_id: str | bytes, raw: Mapping[str | bytes, str | bytes]) -> StreamFill:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    entry = _text(entry_id)
    if fields.get("v") != "1":
        raise BadEntry(f"entry {entry}: unknown format {fields.get('v')!r}")
    field = "?"

    def get(name: str) -> str:
        nonlocal field
        field = name
        return fields[name]

    try:
        fill = LeadFill(
            lead=get("lead"),
            trade_id=get("trade_id"),
            order_id=get("order_id"),
            symbol=get("symbol"),
            side=Side(get("side")),
            qty=Decimal(get("qty")),
            price=Decimal(get("price")),
            ts_ms=int(get("ts_ms")),
            received_ns=time.perf_counter_ns(),
            client_order_id=fields.get("client_order_id"),
            source=get("source"),
        )
        return StreamFill(entry, fill, int(get("epoch")), int(get("published_ms")))
    except KeyError:
        raise BadEntry(f"entry {entry}: missing field {field}") from None
    except (ValueError, ArithmeticError):
        raise BadEntry(f"entry {entry}: bad {field} {fields[field][:40]!r}") from None
