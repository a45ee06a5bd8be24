"""Take-profit and stop-loss orders resting at the venue for each copied position (docs/config.md,
"Take-profit and stop-loss"), so they act while the daemon is down.

- After a follower's orders on a symbol settle, `refresh` makes the venue's reduce-only TP and SL
  trigger orders match the position: placed for the whole position at the percentages of the
  follower's own average entry (bot.core.protect), replaced when the position or entry changes,
  cancelled when it closes. Each is journaled under its client id before it is sent.
- On every account read (start, reconcile, resync), `check` compares the position with the one the
  orders were placed for; when it moved without copybot, it asks the venue what became of them.
  One that triggered pauses that symbol's copy for this follower: a hold (FollowerRuntime.holds,
  journaled) keeps its target at zero until the lead closes or reopens the position, so neither
  the reconciler nor the next lead fill reopens what the venue closed. The event is journaled and
  alerted (`tpsl_triggered`, info).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import structlog

from bot.core.errors import ErrorKind, short
from bot.core.protect import KINDS, Protection, ProtectOrder, ProtectStatus, desired, next_entry
from bot.core.types import ZERO, MarketSpec, Side
from bot.live.ports import JournalPort
from bot.venues import VenueAdapter

log = structlog.get_logger("copybot.protect")


class _Settings(Protocol):
    @property
    def protect(self) -> Protection | None: ...
    @property
    def sizings(self) -> Mapping[str, Any]: ...


class _Engine(Protocol):
    def lead_position(self, lead: str, symbol: str) -> Decimal: ...
    def mark(self, symbol: str) -> Decimal | None: ...


class FollowerRuntime(Protocol):
    """What TP/SL needs of a follower (bot.live.follower.FollowerRuntime)."""

    @property
    def id(self) -> str: ...

    client: Any
    adapter: VenueAdapter
    markets: Mapping[str, MarketSpec]
    journal: JournalPort
    confirmed: dict[str, Decimal]
    entries: dict[str, Decimal]
    protected: dict[str, dict[str, ProtectOrder]]
    protect_seq: dict[tuple[str, str], int]
    holds: dict[tuple[str, str], str]

    protect_poked: dict[str, float]

    @property
    def charge_weight(self) -> Callable[[int], None]: ...
    @property
    def on_protect_triggered(self) -> Callable[[Any, dict[str, Any]], None]: ...
    @property
    def settings(self) -> _Settings: ...
    @property
    def engine(self) -> _Engine: ...


KIND_NAMES = {"tp": "take-profit", "sl": "stop-loss"}


def load(follower: FollowerRuntime) -> None:
    """The orders of an earlier run, from the journal (before the first account read)."""
    for symbol, kinds in follower.journal.protects(follower.id).items():
        for kind, (order, active) in kinds.items():
            follower.protect_seq[(symbol, kind)] = order.seq
            if active:
                follower.protected.setdefault(symbol, {})[kind] = order


def on_fill(follower: FollowerRuntime, symbol: str, before: Decimal, signed: Decimal, price: Decimal) -> None:
    """Keep the follower's own average entry as the venue computes it."""
    follower.entries[symbol] = next_entry(before, follower.entries.get(symbol, ZERO), signed, price)


POKE_EVERY_S = 5.0  # at most one early account read per symbol in this time


def crossed(follower: FollowerRuntime, now: float) -> str | None:
    """A symbol whose current mark is at or past one of its resting orders' triggers (so the venue
    has probably closed the copy), unless one was reported within POKE_EVERY_S: the caller then
    has the follower re-read its account at once rather than at the next reconcile pass."""
    for symbol, orders in follower.protected.items():
        mark = follower.engine.mark(symbol)
        if mark is None or now - follower.protect_poked.get(symbol, -POKE_EVERY_S) < POKE_EVERY_S:
            continue
        for order in orders.values():
            # a SELL order guards a long: its take-profit is above, its stop-loss below the mark
            above = (order.kind == "tp") == (order.side is Side.SELL)
            if (mark >= order.trigger_price) if above else (mark <= order.trigger_price):
                follower.protect_poked[symbol] = now
                return symbol
    return None


def _covered(orders: dict[str, ProtectOrder]) -> Decimal:
    """The signed position the orders were placed for."""
    order = next(iter(orders.values()))
    return order.qty if order.side is Side.SELL else -order.qty


async def check(follower: FollowerRuntime) -> None:
    """After an account read: find TP/SL orders that triggered, and bring the others in line
    (without a request while nothing changed)."""
    symbols = set(follower.protected) | {s for s, q in follower.confirmed.items() if q}
    for symbol in sorted(symbols):
        orders = follower.protected.get(symbol)
        position = follower.confirmed.get(symbol, ZERO)
        # A triggered order closes the whole position (its quantity is at least the position's):
        # only a flat or flipped position is worth asking the venue about.
        if orders and (position == 0 or (position > 0) != (_covered(orders) > 0)):
            fired = await _fired(follower, symbol, orders)
            if fired is not None:
                await _triggered(follower, symbol, fired)
                continue
        await refresh(follower, symbol)


async def _fired(
    follower: FollowerRuntime, symbol: str, orders: dict[str, ProtectOrder]
) -> ProtectOrder | None:
    for kind in KINDS:
        order = orders.get(kind)
        if order is None:
            continue
        status = await _status(follower, symbol, order)
        if status is ProtectStatus.TRIGGERED:
            return order
        if status is ProtectStatus.GONE:  # cancelled by hand or never placed: placed again below
            _retire(follower, symbol, order)
    return None


async def _status(follower: FollowerRuntime, symbol: str, order: ProtectOrder) -> ProtectStatus:
    follower.charge_weight(follower.adapter.weight("order_lookup"))
    return await follower.adapter.protect_status(follower.client, symbol, order.client_order_id)


async def _cancel(follower: FollowerRuntime, symbol: str, order: ProtectOrder) -> bool:
    follower.charge_weight(follower.adapter.weight("order_lookup"))  # a cancel weighs as a lookup
    return await follower.adapter.cancel_protect(follower.client, symbol, order.client_order_id)


def _retire(follower: FollowerRuntime, symbol: str, order: ProtectOrder) -> None:
    follower.journal.save_protect(follower.id, symbol, order, active=False)
    kinds = follower.protected.get(symbol, {})
    kinds.pop(order.kind, None)
    if not kinds:
        follower.protected.pop(symbol, None)


async def refresh(follower: FollowerRuntime, symbol: str) -> None:
    """Make the resting orders match the position: keep, replace, place or cancel."""
    market = follower.markets.get(symbol)
    prot = follower.settings.protect
    current = dict(follower.protected.get(symbol, {}))
    position = follower.confirmed.get(symbol, ZERO)
    entry = follower.entries.get(symbol, ZERO)
    # A venue without conditional orders here gets none. A paused copy is flat (its target is
    # zero) and a leaving follower keeps them while it holds the position: both follow the position.
    usable = prot is not None and market is not None
    usable = usable and follower.adapter.protect_params("sl", Decimal(1), "probe") is not None
    now_seq = int(time.time() * 1000)
    seqs = {k: max(follower.protect_seq.get((symbol, k), 0) + 1, now_seq) for k in KINDS}
    want = (
        desired(prot, follower.id, symbol, position, entry, market, seqs, follower.adapter.client_ids)
        if usable and prot is not None and market is not None
        else {}
    )
    for kind in KINDS:
        cur, new = current.get(kind), want.get(kind)
        if cur is not None and new is not None and _still_covers(cur, new):
            continue
        if cur is not None:
            canceled = await _cancel(follower, symbol, cur)
            if not canceled:
                status = await _status(follower, symbol, cur)
                if status is ProtectStatus.TRIGGERED:
                    await _triggered(follower, symbol, cur)
                    return
            _retire(follower, symbol, cur)
        if new is not None:
            await _place(follower, symbol, new)


def _still_covers(cur: ProtectOrder, new: ProtectOrder) -> bool:
    """A reduction leaves the entry, so the triggers stay; a reduce-only order larger than the
    position closes only the position (the venue caps it), so it need not be replaced: the usual
    lead reduction costs no request. An add moves the entry, and the triggers with it."""
    return cur.side == new.side and cur.trigger_price == new.trigger_price and cur.qty >= new.qty


async def _place(follower: FollowerRuntime, symbol: str, order: ProtectOrder) -> None:
    params = follower.adapter.protect_params(order.kind, order.trigger_price, order.client_order_id)
    if params is None:
        return
    follower.protect_seq[(symbol, order.kind)] = order.seq
    follower.journal.save_protect(follower.id, symbol, order)  # before sending: a restart finds it
    follower.protected.setdefault(symbol, {})[order.kind] = order
    try:
        await follower.client.create_order(symbol, "market", order.side.value, str(order.qty), None, params)
    except Exception as exc:
        log.warning("protect_order_failed", follower=follower.id, symbol=symbol, kind=order.kind,
                    client_order_id=order.client_order_id, error=short(exc))  # fmt: skip
        kind = follower.adapter.classify(exc, placing=True)
        if kind in (ErrorKind.AMBIGUOUS, ErrorKind.DUPLICATE):
            # It may have landed: the id says. Unanswered, the row stays and is asked again.
            status = await _status(follower, symbol, order)
            if status is not ProtectStatus.GONE:
                return
        # Refused (say the price is already past the trigger): the position has no such order; the
        # next refresh (a lead fill on the symbol, the next account read) tries again.
        _retire(follower, symbol, order)
        return
    log.info(
        "protect_order_placed",
        follower=follower.id,
        symbol=symbol,
        kind=order.kind,
        client_order_id=order.client_order_id,
        qty=str(order.qty),
        trigger=str(order.trigger_price),
    )


async def _triggered(follower: FollowerRuntime, symbol: str, fired: ProtectOrder) -> None:
    """The venue closed the copy: pause the symbol until the lead closes or reopens it, cancel the
    other order, tell the operator."""
    for order in list(follower.protected.get(symbol, {}).values()):
        if order.kind != fired.kind:
            await _cancel(follower, symbol, order)
        _retire(follower, symbol, order)
    name = KIND_NAMES[fired.kind]
    reason = (
        f"{name} triggered at {fired.trigger_price} ({fired.client_order_id}): copy paused until the "
        "lead closes or reopens the position"
    )
    leads = [lead for lead in follower.settings.sizings if follower.engine.lead_position(lead, symbol) != 0]
    for lead in leads:
        follower.holds[(lead, symbol)] = reason
        follower.journal.set_hold(follower.id, lead, symbol, reason)
    detail = {
        "follower": follower.id,
        "symbol": symbol,
        "kind": fired.kind,
        "trigger_price": str(fired.trigger_price),
        "qty": str(fired.qty),
        "client_order_id": fired.client_order_id,
        "paused_leads": leads,
    }
    log.info("protect_triggered", **detail)
    follower.on_protect_triggered(follower, detail)
