"""Trades the account's owner makes by hand in a follower's account: seen, told apart from
copybot's own by client id, and handled by the follower's `manual_trades` policy (leave, adopt,
alert; bot.core.manual for the arithmetic, docs/config.md for the operator's view).

When: in the reconciler's pass, right after the follower's positions were read, while it is idle.
What is read: only the symbols whose position at the venue differs from what copybot can explain
(its own fills since the last pass, and the manual fills already seen), plus, on the first pass
after a start, every symbol held or hand-traded (what happened while copybot was down). A pass
where nothing moved by hand reads nothing; a symbol that did costs one order-history read
(`weight("orders")`, 5 on Binance), paced in the address's request budget like every
background read.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from bot.core.errors import short
from bot.core.manual import (
    AccountOrder,
    ManualBook,
    ManualPolicy,
    apply_manual_fills,
    is_copybot_order,
)
from bot.core.rounding import shown
from bot.core.types import ZERO
from bot.live.budget import RequestBudget, paced
from bot.live.ports import JournalPort

if TYPE_CHECKING:
    from bot.live.follower import FollowerRuntime


class Engine(Protocol):
    """What a pass needs of the engine (bot.live.engine.Engine)."""

    journal: JournalPort

    def budget_of(self, follower_id: str) -> RequestBudget: ...
    def alert(self, kind: str, subject: str, detail: dict[str, Any], severity: str = ...) -> None: ...


log = structlog.get_logger("copybot.manual")

# Orders are read from this long before the last pass: an order placed before it and filled after
# (a resting limit) is still seen, and the venue's clock may run ahead of ours. An order already
# applied is recognised by its id and filled quantity.
OVERLAP_MS = 10 * 60_000
# Venues answer order-history queries within a window of 7 days (Binance allOrders, Bybit
# order/history): a longer gap (copybot down a week) is read from its last 7 days.
HISTORY_WINDOW_MS = 7 * 86_400_000 - 60_000
# The row of manual_quantities that holds how far the account was checked, for every symbol.
WATERMARK = "*"
WATERMARK_SAVE_MS = 60_000


def load(journal: JournalPort, follower_id: str) -> ManualBook:
    """The owner's quantities, what was applied and how far the account was checked, as the
    journal kept them (a restart continues from there)."""
    rows = journal.manual_quantities(follower_id)
    book = ManualBook(
        qty={s: r.qty for s, r in rows.items() if s != WATERMARK and r.qty},
        applied=journal.manual_trades_applied(follower_id),
    )
    if WATERMARK in rows:
        book.watermark_ms = book.saved_ms = rows[WATERMARK].cursor_ms
    return book


async def check(engine: Engine, follower: FollowerRuntime, *, share: float | None = None) -> None:
    """Find the owner's hand trades since the last pass and apply the policy. Call it right after
    the follower's positions were read (`follower.confirmed` is the venue's), while it is idle."""
    book = follower.manual
    policy = follower.settings.manual_trades
    now_ms = int(time.time() * 1000)
    positions = {s: q for s, q in follower.confirmed.items() if q}
    watermark = book.watermark_ms
    if book.accounted is None:
        # First pass since the start: whatever moved while copybot was down. Never checked
        # before (first run with this journal): what the account holds is taken as copybot's,
        # as it always was, and hand trades are looked for from now on.
        symbols = set(positions) | set(book.qty) if watermark is not None else set()
    else:
        moved = {s for s in set(positions) | set(book.accounted)
                 if positions.get(s, ZERO) != book.accounted.get(s, ZERO)}  # fmt: skip
        symbols = moved | book.pending
    # From here on, copybot's own fills add to this (bot/live/follower_worker.py, `_send`).
    book.accounted = dict(positions)
    since = max((watermark if watermark is not None else now_ms) - OVERLAP_MS, now_ms - HISTORY_WINDOW_MS)
    for symbol in sorted(symbols):
        if symbol not in follower.markets:
            continue
        try:
            orders = await _read(engine, follower, symbol, since, share)
        except Exception as exc:  # read again at the next pass; nothing is assumed meanwhile
            book.pending.add(symbol)
            log.warning("manual_trades_read_failed", follower=follower.id, symbol=symbol, error=short(exc))
            continue
        book.pending.discard(symbol)
        _apply(engine, follower, symbol, positions.get(symbol, ZERO), orders, policy)
    if policy is ManualPolicy.ADOPT:
        for symbol in [s for s, q in book.qty.items() if q]:
            _adopt_held(engine, follower, symbol)
    if book.pending and watermark is not None:
        return  # a symbol is still unread: the next pass reads it from the same point
    book.watermark_ms = now_ms
    # Journaled at most once a minute per follower (a row per pass and follower adds up): a
    # restart then reads a little further back, which OVERLAP_MS covers and order ids dedupe.
    if now_ms - book.saved_ms >= WATERMARK_SAVE_MS:
        engine.journal.save_manual_quantity(follower.id, WATERMARK, ZERO, now_ms)
        book.saved_ms = now_ms


async def _read(
    engine: Engine, follower: FollowerRuntime, symbol: str, since_ms: int, share: float | None
) -> list[AccountOrder]:
    adapter, client = follower.adapter, follower.client
    budget = engine.budget_of(follower.id)
    orders: list[AccountOrder] = await paced(
        budget, adapter, client, adapter.weight("orders"),
        lambda: adapter.account_orders(client, symbol, since_ms), share=share,
    )  # fmt: skip
    return orders


def _apply(
    engine: Engine,
    follower: FollowerRuntime,
    symbol: str,
    position: Decimal,
    orders: list[AccountOrder],
    policy: ManualPolicy,
) -> None:
    book = follower.manual
    seen: list[tuple[AccountOrder, Decimal]] = []
    for order in sorted(orders, key=lambda o: o.ts_ms):
        if order.symbol != symbol or is_copybot_order(order.client_order_id):
            continue  # copybot's own (copy orders, its resting exits): its quantity already
        delta = order.filled - book.applied.get(order.order_id, ZERO)
        if delta > 0:
            seen.append((order, delta * order.side.sign))
    if not seen:
        return
    before = book.manual(symbol)
    if policy is ManualPolicy.ADOPT:
        after = ZERO  # taken into copybot's own quantity, reconciled to the copy target
    else:
        after = apply_manual_fills(position, before, [qty for _, qty in seen])
    book.qty[symbol] = after
    engine.journal.save_manual_quantity(follower.id, symbol, after, int(time.time() * 1000))
    step = follower.markets[symbol].step

    def q(value: Decimal) -> str:  # at the market's lot precision, as the status shows them
        return shown(value, step)

    for order, qty in seen:
        book.applied[order.order_id] = order.filled
        engine.journal.record_manual_trade(follower.id, order, policy.value)
        detail: dict[str, Any] = {
            "follower": follower.id,
            "symbol": symbol,
            "side": order.side.value,
            "size": q(abs(qty)),
            "qty": q(qty),
            "order_id": order.order_id,
            "client_order_id": order.client_order_id or None,
            "policy": policy.value,
            "manual_qty": q(after),
            "position": q(position),
        }
        log.warning("manual_trade", **detail)
        if policy is ManualPolicy.ALERT:
            engine.alert("manual_trade", follower.id, detail, severity="warning")
        else:
            engine.journal.record_event("manual_trade", follower.id, detail)


def _adopt_held(engine: Engine, follower: FollowerRuntime, symbol: str) -> None:
    """The policy became `adopt` while the owner held a manual quantity: copybot takes it."""
    qty = follower.manual.qty.pop(symbol)
    engine.journal.save_manual_quantity(follower.id, symbol, ZERO, int(time.time() * 1000))
    detail = {"follower": follower.id, "symbol": symbol, "qty": shown(qty, follower.markets[symbol].step),
              "policy": "adopt"}  # fmt: skip
    engine.journal.record_event("manual_adopted", follower.id, detail)
    log.warning("manual_adopted", **detail)
