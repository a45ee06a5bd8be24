"""A lead's position state as the feed publishes it (docs/cluster.md, "Lead positions"): what a
shard needs of the lead to size and converge its followers, so a shard never reads the lead's
account and needs no lead key.

The same fields as `LeadRuntime` holds after a venue snapshot: positions with their entry prices
and leverage, the per-symbol snapshot times that say which fills a venue snapshot already holds
(a fill at or before them is "in the snapshot"), and the lead's equity. Money is the Decimal's own
text, never a float, so a shard reads exactly what the feed computed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.core.types import ZERO, LeadFill
from bot.live.lead_state import LeadRuntime, entry_price_after


class BadDoc(ValueError):
    """A lead state document that is not of this format."""


@dataclass(frozen=True, slots=True)
class LeadDoc:
    positions: dict[str, Decimal] = field(default_factory=dict)
    entry_prices: dict[str, Decimal] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    snapshot_ms: dict[str, int] = field(default_factory=dict)
    snapshot_default_ms: int = 0
    equity: Decimal = ZERO

    @classmethod
    def of(cls, lead: LeadRuntime) -> LeadDoc:
        return cls(dict(lead.positions), dict(lead.entry_prices), dict(lead.leverage),
                   dict(lead.snapshot_ms), lead.snapshot_default_ms, lead.equity)  # fmt: skip

    def install(self, lead: LeadRuntime) -> None:
        """Make `lead` hold this state (a shard's start, a snapshot entry, a feed's term start)."""
        lead.positions = dict(self.positions)
        lead.entry_prices = dict(self.entry_prices)
        lead.leverage = dict(self.leverage)
        lead.snapshot_ms = dict(self.snapshot_ms)
        lead.snapshot_default_ms = self.snapshot_default_ms
        lead.equity = self.equity

    def after(self, fill: LeadFill, equity: Decimal) -> LeadDoc:
        """The state once `fill` is applied, by the rule the engine applies it with
        (`LeadRuntime.in_snapshot`, `LeadRuntime.apply`): a fill the snapshot holds changes nothing."""
        in_snapshot = fill.ts_ms <= self.snapshot_ms.get(fill.symbol, self.snapshot_default_ms)
        if in_snapshot:
            return LeadDoc(self.positions, self.entry_prices, self.leverage, self.snapshot_ms,
                           self.snapshot_default_ms, equity)  # fmt: skip
        positions, entries = dict(self.positions), dict(self.entry_prices)
        before = positions.get(fill.symbol, ZERO)
        after = before + fill.signed_qty
        entries_after = entry_price_after(before, after, entries.get(fill.symbol), fill)
        if after == 0:
            positions.pop(fill.symbol, None)
            entries.pop(fill.symbol, None)
        else:
            positions[fill.symbol] = after
            if entries_after is not None:
                entries[fill.symbol] = entries_after
        return LeadDoc(positions, entries, self.leverage, self.snapshot_ms, self.snapshot_default_ms, equity)

    def encode(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "positions": {s: str(q) for s, q in sorted(self.positions.items())},
                "entry_prices": {s: str(p) for s, p in sorted(self.entry_prices.items())},
                "leverage": dict(sorted(self.leverage.items())),
                "snapshot_ms": dict(sorted(self.snapshot_ms.items())),
                "snapshot_default_ms": self.snapshot_default_ms,
                "equity": str(self.equity),
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str | bytes) -> LeadDoc:
        try:
            raw: Any = json.loads(text)
            if not isinstance(raw, dict) or raw.get("v") != 1:
                raise BadDoc(f"unknown lead state format {str(raw)[:40]!r}")
            return cls(
                {str(s): Decimal(q) for s, q in raw["positions"].items()},
                {str(s): Decimal(p) for s, p in raw["entry_prices"].items()},
                {str(s): int(n) for s, n in raw["leverage"].items()},
                {str(s): int(t) for s, t in raw["snapshot_ms"].items()},
                int(raw["snapshot_default_ms"]),
                Decimal(raw["equity"]),
            )
        except BadDoc:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError) as exc:
            raise BadDoc(f"bad lead state document: {type(exc).__name__}: {str(exc)[:80]}") from None
