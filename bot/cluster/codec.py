"""A lead stream's entries as fields, and back: every value a string, money as the Decimal's own
text (never a float), so a shard reads exactly what the feed decoded.

Two kinds (docs/cluster.md, "Lead positions"): a lead fill, and a lead position snapshot the feed
publishes when its check of the lead's account finds the stream's running position wrong (or at
the very first term). Each entry carries `seq`, its number in the lead's stream (set by the
publish script, fills.py), so a shard applies every entry once and in order."""

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
    seq: int | None = None  # None: published before entries were numbered
    lead_equity: Decimal | None = None  # the lead's equity as the feed knew it at publish

    @property
    def lead(self) -> str:
        return self.fill.lead

    @property
    def ref(self) -> str:
        return self.fill.trade_id


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    """The lead's whole position state (`doc`: bot/cluster/lead_doc.py's JSON), replacing the
    running one from this entry on."""

    entry_id: str
    lead: str
    doc: str
    epoch: int
    published_ms: int
    seq: int

    @property
    def ref(self) -> str:
        return f"snapshot:{self.seq}"


StreamEntry = StreamFill | StreamSnapshot


def snapshot_fields(lead: str, *, epoch: int) -> dict[str, str]:
    """A snapshot entry's fields but its `seq` and `doc`, which the snapshot script adds."""
    return {"v": "1", "type": "snapshot", "lead": lead, "epoch": str(epoch),
            "published_ms": str(time.time_ns() // 1_000_000)}  # fmt: skip


def encode(fill: LeadFill, *, epoch: int, lead_equity: Decimal | None = None) -> dict[str, str]:
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
    if lead_equity is not None:
        fields["lead_equity"] = str(lead_equity)
    return fields


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode(entry_id: str | bytes, raw: Mapping[str | bytes, str | bytes]) -> StreamFill:
    """A fill entry (BadEntry for anything else, a snapshot entry included)."""
    item = decode_entry(entry_id, raw)
    if not isinstance(item, StreamFill):
        raise BadEntry(f"entry {item.entry_id}: a snapshot entry, not a fill")
    return item


def decode_entry(entry_id: str | bytes, raw: Mapping[str | bytes, str | bytes]) -> StreamEntry:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    entry = _text(entry_id)
    if fields.get("v") != "1":
        raise BadEntry(f"entry {entry}: unknown format {fields.get('v')!r}")
    kind = fields.get("type", "fill")
    if kind not in ("fill", "snapshot"):
        raise BadEntry(f"entry {entry}: unknown type {kind[:20]!r}")
    field = "?"

    def get(name: str) -> str:
        nonlocal field
        field = name
        return fields[name]

    try:
        if kind == "snapshot":
            return StreamSnapshot(entry, get("lead"), get("doc"), int(get("epoch")),
                                  int(get("published_ms")), int(get("seq")))  # fmt: skip
        seq = fields.get("seq")
        equity = fields.get("lead_equity")
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
        field = "seq/lead_equity"
        return StreamFill(entry, fill, int(get("epoch")), int(get("published_ms")),
                          None if seq is None else int(seq),
                          None if equity is None else Decimal(equity))  # fmt: skip
    except KeyError:
        raise BadEntry(f"entry {entry}: missing field {field}") from None
    except (ValueError, ArithmeticError):
        raise BadEntry(f"entry {entry}: bad {field} {fields.get(field, '')[:40]!r}") from None
