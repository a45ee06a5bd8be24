"""One follower's worker (docs/architecture.md, "The path of one fill", step 4): it takes everything
queued for the follower at once, applies each lead fill to the copy ratios (in order: ratios are
decided at entries), then plans once per symbol touched, from the target (ratio x lead position,
clipped by caps) minus the position copybot holds, puts each leg through the risk gate and sends it.
The follower's state and targets are `FollowerRuntime` (bot/live/follower.py)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import structlog

from bot.core import clientid, planner, risk
from bot.core.errors import ErrorKind
from bot.core.join_leave import reopened
from bot.core.manual import account_reduces
from bot.core.sizing import next_ratio
from bot.core.trading_state import StateCode
from bot.core.types import (
    ZERO,
    Intent,
    MarketSpec,
    OrderStatus,
    Reason,
    ReasonCode,
    Side,
    TradingState,
    Verdict,
)
from bot.live import protect
from bot.live.follower import FollowerRuntime
from bot.live.work import Disposition, FillWork, SyncWork, Work

log = structlog.get_logger("copybot.follower")


async def run(follower: FollowerRuntime) -> None:
    """Take everything queued, process it as one batch, repeat. A batch that raises does not
    end the worker: see `_batch_failed`."""
    while True:
        batch = [await follower.queue.get()]
        while not follower.queue.empty():
            batch.append(follower.queue.get_nowait())
        follower.busy = True
        try:
            await _process(follower, batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _batch_failed(follower, batch, exc)
        else:
            follower.on_batch_ok(follower)
        finally:
            follower.busy = False
            for _ in batch:
                follower.queue.task_done()


def _batch_failed(follower: FollowerRuntime, batch: list[Work], exc: BaseException) -> None:
    """Report, then make the batch's symbols converge again from the venue's truth: positions
    are re-read (needs_resync) and each symbol is retried after a backoff, carrying the lead
    fills so their disposition is still recorded (invariant 1). Too many failures within the
    window disable this follower alone; every other follower's worker is untouched."""
    symbols: dict[str, tuple[str, Decimal, list[str]]] = {}
    for work in batch:
        if isinstance(work, FillWork):
            lead, symbol, price, fills = (
                work.fill.lead,
                work.fill.symbol,
                work.fill.price,
                [work.fill.trade_id],
            )
        else:
            lead, symbol, price, fills = work.lead, work.symbol, work.ref_price, list(work.fills)
        prior = symbols.get(symbol, ("", ZERO, []))[2]
        symbols[symbol] = (lead, price, [*prior, *fills])
    follower.needs_resync = True
    follower.on_batch_failed(follower, exc, sorted(symbols))
    policy = follower.settings.retry
    now = time.monotonic()
    follower.failures.append(now)
    while follower.failures and now - follower.failures[0] > policy.window_s:
        follower.failures.popleft()
    if len(follower.failures) >= policy.max_failures:
        follower.disable(
            f"worker failed {len(follower.failures)} times within {policy.window_s:g} s; last: {exc!r}"[:300],
            StateCode.WORKER_FAILURES,
        )
    if follower.state is TradingState.HALTED:
        return
    delay = min(policy.backoff_s * 2 ** (len(follower.failures) - 1), policy.backoff_max_s)
    trigger = f"rt{int(time.time() * 1000)}"
    retries = [SyncWork(sym, lead, trigger, price, "retry", tuple(fills))
               for sym, (lead, price, fills) in symbols.items()]  # fmt: skip
    follower.retry_pending = True

    def resubmit() -> None:
        follower.retry_pending = False
        for work in retries:
            follower.submit(work)

    asyncio.get_running_loop().call_later(delay, resubmit)


async def _process(follower: FollowerRuntime, batch: list[Work]) -> None:
    if follower.needs_resync or follower.reread:
        follower.reread = False
        try:
            await follower.engine.resync_follower(follower)
        except Exception as exc:  # still unknown: the batch is deferred and retried later
            log.warning("follower_resync_failed", follower=follower.id, error=str(exc)[:200])
    # symbol -> (lead, trigger, ref price, fills coalesced)
    touched: dict[str, tuple[str, str, Decimal, list[str]]] = {}
    for work in batch:
        if isinstance(work, FillWork):
            fill = work.fill
            key = (fill.lead, fill.symbol)
            if key in follower.holds and reopened(work.lead_before, work.lead_after):
                del follower.holds[key]  # the lead closed or reopened what it held at the join
                follower.on_hold_cleared(follower, fill.lead, fill.symbol)
            if fill.lead in follower.settings.sizings:
                follower.ratios[key] = next_ratio(
                    follower.settings.sizings[fill.lead],
                    prev_ratio=follower.ratios.get(key, ZERO),
                    lead_before=work.lead_before,
                    lead_after=work.lead_after,
                    price=fill.price,
                    follower_equity=follower.balance.equity,
                    lead_equity=work.lead_equity,
                    new_entry=work.new_entry,
                )
                follower.journal.save_ratio(fill.lead, follower.id, fill.symbol, follower.ratios[key])
            merged = touched.get(fill.symbol, ("", "", ZERO, []))[3]
            touched[fill.symbol] = (fill.lead, fill.trade_id, fill.price, [*merged, fill.trade_id])
        else:
            follower.ensure_ratio(work.lead, work.symbol, work.ref_price)
            merged = touched.get(work.symbol, ("", "", ZERO, []))[3]
            touched[work.symbol] = (work.lead, work.trigger, work.ref_price, [*merged, *work.fills])
    for symbol, (lead, trigger, ref_price, fills) in touched.items():
        await _converge(follower, symbol, lead, trigger, ref_price, fills)
    for symbol in touched:
        await _protect(follower, symbol)
    for work in batch:
        if isinstance(work, FillWork):
            follower.fanout_rank.pop(work.fill.trade_id, None)
    flat = not any(follower.own(s) for s in follower.confirmed)  # the owner's hand-traded quantity is his
    if follower.closing_reason and flat and follower.state is not TradingState.HALTED:
        follower.request_state(
            follower, TradingState.HALTED, StateCode.PORTFOLIO_STOP, follower.closing_reason
        )
        log.warning("follower_halted_after_stop", follower=follower.id, reason=follower.closing_reason)


async def _protect(follower: FollowerRuntime, symbol: str) -> None:
    """TP/SL orders follow the position (bot/live/protect.py); a failure waits for the next
    account read, it does not fail the batch."""
    if follower.needs_resync or (follower.settings.protect is None and symbol not in follower.protected):
        return
    try:
        await protect.refresh(follower, symbol)
    except Exception as exc:
        log.warning("protect_refresh_failed", follower=follower.id, symbol=symbol, error=str(exc)[:200])


async def _converge(
    follower: FollowerRuntime, symbol: str, lead: str, trigger: str, ref_price: Decimal, fills: list[str]
) -> None:
    bound = log.bind(follower=follower.id, lead=lead, trade_id=trigger, symbol=symbol)
    market = follower.markets.get(symbol)
    if market is None:
        denied = Reason(ReasonCode.NOT_LISTED, f"{symbol} is not listed on the follower's venue")
        follower.dispose(lead, fills, symbol, Disposition.DENIED, denied.text, denied)
        return
    if follower.needs_resync:
        follower.dispose(
            lead, fills, symbol, Disposition.DEFERRED, "position unknown after an unsettled order"
        )
        return
    target, clip_reason = follower.target(symbol)
    current = follower.own(symbol)
    # An IOC entry may fill as low as the bottom of its band: the venue minimum is checked there.
    band = follower.settings.limits.slippage_bps
    floor_price = (
        ref_price if follower.settings.market_orders or band is None else ref_price * (1 - band / 10_000)
    )
    plan = planner.plan_legs(
        target, current, market, floor_price, round_up_min=follower.settings.round_up_min
    )
    if not plan.legs:
        if plan.deferred:
            follower.dispose(lead, fills, symbol, Disposition.DEFERRED, plan.deferred)
        elif clip_reason:  # a cap holds the target where it is: the fill is not copied
            follower.dispose(lead, fills, symbol, Disposition.DENIED, clip_reason.text, clip_reason)
        else:
            follower.dispose(lead, fills, symbol, Disposition.AT_TARGET, "")
        if plan.deferred:
            bound.info("copy_deferred", reason=plan.deferred, target=str(target), current=str(current))
        return
    cids = []
    for leg_no, leg in enumerate(plan.legs):
        cid = clientid.client_order_id(
            lead, trigger, follower.id, symbol, leg_no, follower.adapter.client_ids
        )
        cids.append(cid)
        intent = Intent(
            lead=lead,
            follower=follower.id,
            symbol=symbol,
            trigger=trigger,
            leg=leg_no,
            side=leg.side,
            qty=leg.qty,
            # Reduce-only at the venue only when it also reduces the account: the owner may
            # hold the other side (bot.core.manual.account_reduces).
            reduce_only=leg.reduce_only
            and account_reduces(follower.position(symbol), leg.qty * leg.side.sign),
            ref_price=ref_price,
            target=target,
            current=follower.own(symbol),
            client_order_id=cid,
        )
        decision = risk.evaluate(intent, follower.risk_state(), follower.settings.limits, market)
        follower.journal.record_intent(intent)
        follower.journal.record_decision(decision)
        follower.on_decision(follower, decision)
        if decision.verdict is Verdict.DENIED:
            bound.info("copy_denied", client_order_id=cid, reason=decision.reason)
            continue
        if decision.verdict is Verdict.CLIPPED:
            bound.info("copy_clipped", client_order_id=cid, reason=decision.reason, qty=str(decision.qty))
        await _send(follower, intent, decision.qty, market, bound)
    note = ",".join(cids) + (f" (target clipped: {clip_reason.text})" if clip_reason else "")
    follower.dispose(lead, fills, symbol, Disposition.PLANNED, note)


async def _send(
    follower: FollowerRuntime, intent: Intent, qty: Decimal, market: MarketSpec, bound: Any
) -> None:
    signed = qty if intent.side is Side.BUY else -qty
    symbol = intent.symbol
    follower.inflight[symbol] = follower.inflight.get(symbol, ZERO) + signed
    band = follower.settings.limits.slippage_bps
    price = None
    if (
        band is not None
        and intent.ref_price > 0
        and not intent.reduce_only
        and not follower.settings.market_orders
    ):
        price = risk.entry_price_limit(intent.side, intent.ref_price, band, market.tick)
    limit = price is not None
    sent_ns = time.perf_counter_ns()
    order_type = "limit" if limit else "market"
    try:
        outcome = await follower.placer.place(intent, qty, order_type=order_type, price=price)
    finally:
        follower.inflight[symbol] = follower.inflight.get(symbol, ZERO) - signed
    acked_ns = time.perf_counter_ns()
    follower.orders_sent += 1
    filled = outcome.filled_qty if intent.side is Side.BUY else -outcome.filled_qty
    if filled and outcome.avg_price:
        protect.on_fill(follower, symbol, follower.confirmed.get(symbol, ZERO), filled, outcome.avg_price)
    follower.confirmed[symbol] = follower.confirmed.get(symbol, ZERO) + filled
    if follower.manual.accounted is not None:  # copybot's own fill: explained, nothing to read
        follower.manual.accounted[symbol] = follower.manual.accounted.get(symbol, ZERO) + filled
    if filled and outcome.avg_price:
        follower.balance.record_fill(
            follower.markets.get(symbol), symbol, filled, outcome.avg_price, follower.engine.mark
        )
    follower.journal.record_outcome(outcome, follower.id, sent_ns=sent_ns, acked_ns=acked_ns)
    bound.info(
        "order_outcome",
        client_order_id=intent.client_order_id,
        status=outcome.status,
        filled=str(outcome.filled_qty),
        avg_price=str(outcome.avg_price) if outcome.avg_price is not None else None,
        error=outcome.error,
    )
    follower.on_outcome(follower, intent, outcome, sent_ns, acked_ns)
    retry = follower.entry_retry.after(intent, qty, outcome, limit=limit)
    if retry is not None:  # re-planned against the target, same band (bot.live.entry_retry)
        delay, trigger = retry
        work = SyncWork(symbol, intent.lead, trigger, intent.ref_price, "entry_retry")
        asyncio.get_running_loop().call_later(delay, follower.submit, work)
    if outcome.status is OrderStatus.UNKNOWN:
        follower.needs_resync = True
    if outcome.error is ErrorKind.AUTH:
        follower.disable(f"authentication failed: {outcome.reason}", StateCode.AUTH_FAILED)
