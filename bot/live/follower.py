"""One follower account at run time: its own queue and worker, so that one slow or failing account
never delays another (invariant 8).

The worker takes everything queued for it at once: it first applies each lead fill to the copy
ratios (in order: ratios are decided at entries), then plans once per symbol touched, from the
target (ratio x lead position, clipped by caps) minus the position it holds. Partial fills queued
behind a slow order thereby become one order instead of many below the venue minimum.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import structlog

from bot.core import clientid, planner, risk
from bot.core.errors import ErrorKind
from bot.core.join_leave import exits_only, reopened
from bot.core.manual import ManualBook, account_reduces, own_quantity
from bot.core.protect import ProtectOrder
from bot.core.risk import FollowerRiskState
from bot.core.sizing import base_ratio, next_ratio, target_position
from bot.core.trading_state import StateChange, StateCode
from bot.core.types import (
    ZERO,
    Decision,
    Intent,
    MarketSpec,
    OrderOutcome,
    OrderStatus,
    Reason,
    ReasonCode,
    Side,
    TradingState,
    Verdict,
)
from bot.live import protect
from bot.live.entry_retry import EntryRetry
from bot.live.executor import OrderPlacer
from bot.live.ports import JournalPort
from bot.live.trading_states import Standing
from bot.live.work import Balance, Disposition, FillWork, FollowerSettings, SyncWork, Work
from bot.venues import VenueAdapter

log = structlog.get_logger("copybot.follower")


class EngineView(Protocol):
    """What a follower reads from the engine: the leads' state and global switches."""

    def lead_position(self, lead: str, symbol: str) -> Decimal: ...
    def lead_contract_size(self, lead: str, symbol: str) -> Decimal: ...
    def lead_equity(self, lead: str) -> Decimal: ...
    def global_state(self) -> TradingState: ...
    def kill_switch(self) -> bool: ...
    def mark(self, symbol: str) -> Decimal | None: ...
    async def resync_follower(self, follower: FollowerRuntime) -> None: ...


# Asks the state owner (bot/live/trading_states.py) for a state; the answer says what was granted.
StateRequest = Callable[["FollowerRuntime", TradingState, StateCode, str], StateChange]


@dataclass
class FollowerRuntime:
    settings: FollowerSettings
    client: Any
    adapter: VenueAdapter
    markets: Mapping[str, MarketSpec]
    engine: EngineView
    journal: JournalPort
    placer: OrderPlacer
    request_state: StateRequest
    on_outcome: Callable[[FollowerRuntime, Intent, OrderOutcome, int, int], None] = lambda *a: None
    on_decision: Callable[[FollowerRuntime, Decision], None] = lambda *a: None
    on_denied: Callable[[FollowerRuntime, Reason], None] = lambda *a: None  # a fill denied before any intent
    # A batch raised (logged, counted and alerted by the supervisor) / a batch went through.
    on_batch_failed: Callable[[FollowerRuntime, BaseException, list[str]], None] = lambda *a: None
    on_batch_ok: Callable[[FollowerRuntime], None] = lambda *a: None
    # What became of these lead fills for this follower is recorded (bot/live/settlement.py).
    on_disposed: Callable[[FollowerRuntime, list[str]], None] = lambda *a: None
    confirmed: dict[str, Decimal] = field(default_factory=dict)
    inflight: dict[str, Decimal] = field(default_factory=dict)
    ratios: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    balance: Balance = field(default_factory=Balance)
    standing: Standing = field(default_factory=Standing)  # written by the state owner alone
    needs_resync: bool = False
    closing_reason: str | None = None  # a portfolio stop: target zero everywhere, then HALTED
    queue: asyncio.Queue[Work] = field(default_factory=asyncio.Queue)
    busy: bool = False
    orders_sent: int = 0
    # lead trade id -> this follower's place in that fill's fan-out order (for fairness reports)
    fanout_rank: dict[str, int] = field(default_factory=dict)
    failures: deque[float] = field(default_factory=deque)  # monotonic times of failed batches
    retry_pending: bool = False
    entry_retry: EntryRetry = field(default_factory=EntryRetry)  # short IOC entries, tried again soon
    # Joining and leaving while the daemon runs (bot.core.join_leave, bot/live/membership.py):
    # (lead, symbol) -> why a lead position held at the join is not copied until the lead closes or
    # reopens it; and, once leaving, "close" (target zero) or "follow_exits" (reductions only).
    holds: dict[tuple[str, str], str] = field(default_factory=dict)
    on_hold_cleared: Callable[[FollowerRuntime, str, str], None] = lambda *a: None
    leaving: str | None = None
    # The owner's hand trades (bot.core.manual, bot/live/manual_trades.py): copybot plans and
    # measures drift on its own quantity, the account's position minus the owner's.
    manual: ManualBook = field(default_factory=ManualBook)
    # Take-profit / stop-loss at the venue (bot/live/protect.py): the follower's own average entry
    # per symbol, the orders resting for each position (symbol -> "tp"/"sl" -> order) and the last
    # sequence number used per (symbol, kind).
    entries: dict[str, Decimal] = field(default_factory=dict)
    protected: dict[str, dict[str, ProtectOrder]] = field(default_factory=dict)
    protect_seq: dict[tuple[str, str], int] = field(default_factory=dict)
    on_protect_triggered: Callable[[Any, dict[str, Any]], None] = lambda *a: None
    protect_poked: dict[str, float] = field(default_factory=dict)  # symbol -> when a mark crossed
    reread: bool = False  # read the account before the next batch (a mark crossed a TP/SL trigger)
    # Counts a TP/SL cancel or lookup against the address's request budget without waiting for
    # room (the worker must not stall copying): background reads then leave room for it.
    charge_weight: Callable[[int], None] = lambda weight: None

    @property
    def id(self) -> str:
        return self.settings.id

    @property
    def state(self) -> TradingState:
        return self.standing.state

    @property
    def state_reason(self) -> str:
        return self.standing.reason

    def submit(self, work: Work) -> None:
        self.queue.put_nowait(work)

    def position(self, symbol: str) -> Decimal:
        return self.confirmed.get(symbol, ZERO) + self.inflight.get(symbol, ZERO)

    def own(self, symbol: str) -> Decimal:
        """copybot's own quantity: the account's position, in-flight included, minus the owner's."""
        return own_quantity(self.position(symbol), self.manual.manual(symbol))

    def risk_state(self) -> FollowerRiskState:
        symbols = set(self.confirmed) | set(self.inflight)
        marks = {s: m for s in symbols if (m := self.engine.mark(s)) is not None}
        return FollowerRiskState(
            follower=self.id,
            state=self.state,
            global_state=self.engine.global_state(),
            kill_switch=self.engine.kill_switch(),
            equity=self.balance.equity,
            peak_equity=self.balance.peak,
            day_start_equity=self.balance.day_start,
            allocation_base=self.balance.allocation_base,
            positions={s: self.position(s) for s in symbols},
            marks=marks,
            contract_sizes={s: self.markets[s].contract_size for s in symbols if s in self.markets},
        )

    def target(self, symbol: str) -> tuple[Decimal, Reason | None]:
        """The clipped target position for a symbol, summed over the leads this follower copies,
        and why it is below the lead's when it is."""
        market = self.markets[symbol]
        if self.closing_reason:
            return ZERO, Reason(ReasonCode.PORTFOLIO_STOP, self.closing_reason)
        if self.leaving == "close":
            return ZERO, Reason(ReasonCode.LEAVING, "leaving: closing the copied positions")
        limits = self.settings.limits
        if symbol in limits.symbols_deny:
            return ZERO, Reason(ReasonCode.SYMBOL_DENIED, f"symbol_denied: {symbol} is in symbols_deny")
        if limits.symbols_allow is not None and symbol not in limits.symbols_allow:
            return ZERO, Reason(
                ReasonCode.SYMBOL_NOT_ALLOWED, f"symbol_not_allowed: {symbol} is not in symbols_allow"
            )
        parts = []
        lead_cs = Decimal(1)
        held = None
        for lead in self.settings.sizings:
            ratio = self.ratios.get((lead, symbol), ZERO)
            if (lead, symbol) in self.holds:
                ratio, held = ZERO, self.holds[(lead, symbol)]
            parts.append((ratio, self.engine.lead_position(lead, symbol)))
            lead_cs = self.engine.lead_contract_size(lead, symbol)
        raw = target_position(parts, market, lead_contract_size=lead_cs)
        clipped, text = risk.clip_target(raw, symbol, self.risk_state(), self.settings.limits, market)
        if self.leaving == "follow_exits":
            limited = exits_only(clipped, self.own(symbol))
            if limited != clipped:
                return limited, Reason(ReasonCode.LEAVING, "leaving: only the lead's exits are copied")
        if held is not None and not text:
            return clipped, Reason(ReasonCode.NOT_JOINED, held)
        return clipped, Reason(ReasonCode.MAX_POSITION_NOTIONAL, text) if text else None

    # -- the worker ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Take everything queued, process it as one batch, repeat. A batch that raises does not
        end the worker: see `_batch_failed`."""
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            self.busy = True
            try:
                await self._process(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._batch_failed(batch, exc)
            else:
                self.on_batch_ok(self)
            finally:
                self.busy = False
                for _ in batch:
                    self.queue.task_done()

    def _batch_failed(self, batch: list[Work], exc: BaseException) -> None:
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
        self.needs_resync = True
        self.on_batch_failed(self, exc, sorted(symbols))
        policy = self.settings.retry
        now = time.monotonic()
        self.failures.append(now)
        while self.failures and now - self.failures[0] > policy.window_s:
            self.failures.popleft()
        if len(self.failures) >= policy.max_failures:
            self.disable(
                f"worker failed {len(self.failures)} times within {policy.window_s:g} s; last: {exc!r}"[:300],
                StateCode.WORKER_FAILURES,
            )
        if self.state is TradingState.HALTED:
            return
        delay = min(policy.backoff_s * 2 ** (len(self.failures) - 1), policy.backoff_max_s)
        trigger = f"rt{int(time.time() * 1000)}"
        retries = [SyncWork(sym, lead, trigger, price, "retry", tuple(fills))
                   for sym, (lead, price, fills) in symbols.items()]  # fmt: skip
        self.retry_pending = True

        def resubmit() -> None:
            self.retry_pending = False
            for work in retries:
                self.submit(work)

        asyncio.get_running_loop().call_later(delay, resubmit)

    async def _process(self, batch: list[Work]) -> None:
        if self.needs_resync or self.reread:
            self.reread = False
            try:
                await self.engine.resync_follower(self)
            except Exception as exc:  # still unknown: the batch is deferred and retried later
                log.warning("follower_resync_failed", follower=self.id, error=str(exc)[:200])
        # symbol -> (lead, trigger, ref price, fills coalesced)
        touched: dict[str, tuple[str, str, Decimal, list[str]]] = {}
        for work in batch:
            if isinstance(work, FillWork):
                fill = work.fill
                key = (fill.lead, fill.symbol)
                if key in self.holds and reopened(work.lead_before, work.lead_after):
                    del self.holds[key]  # the lead closed or reopened what it held at the join
                    self.on_hold_cleared(self, fill.lead, fill.symbol)
                if fill.lead in self.settings.sizings:
                    self.ratios[key] = next_ratio(
                        self.settings.sizings[fill.lead],
                        prev_ratio=self.ratios.get(key, ZERO),
                        lead_before=work.lead_before,
                        lead_after=work.lead_after,
                        price=fill.price,
                        follower_equity=self.balance.equity,
                        lead_equity=work.lead_equity,
                        new_entry=work.new_entry,
                    )
                    self.journal.save_ratio(fill.lead, self.id, fill.symbol, self.ratios[key])
                merged = touched.get(fill.symbol, ("", "", ZERO, []))[3]
                touched[fill.symbol] = (fill.lead, fill.trade_id, fill.price, [*merged, fill.trade_id])
            else:
                self.ensure_ratio(work.lead, work.symbol, work.ref_price)
                merged = touched.get(work.symbol, ("", "", ZERO, []))[3]
                touched[work.symbol] = (work.lead, work.trigger, work.ref_price, [*merged, *work.fills])
        for symbol, (lead, trigger, ref_price, fills) in touched.items():
            await self._converge(symbol, lead, trigger, ref_price, fills)
        for symbol in touched:
            await self._protect(symbol)
        for work in batch:
            if isinstance(work, FillWork):
                self.fanout_rank.pop(work.fill.trade_id, None)
        flat = not any(self.own(s) for s in self.confirmed)  # the owner's hand-traded quantity is his
        if self.closing_reason and flat and self.state is not TradingState.HALTED:
            self.request_state(self, TradingState.HALTED, StateCode.PORTFOLIO_STOP, self.closing_reason)
            log.warning("follower_halted_after_stop", follower=self.id, reason=self.closing_reason)

    async def _protect(self, symbol: str) -> None:
        """TP/SL orders follow the position (bot/live/protect.py); a failure waits for the next
        account read, it does not fail the batch."""
        if self.needs_resync or (self.settings.protect is None and symbol not in self.protected):
            return
        try:
            await protect.refresh(self, symbol)
        except Exception as exc:
            log.warning("protect_refresh_failed", follower=self.id, symbol=symbol, error=str(exc)[:200])

    def ensure_ratio(self, lead: str, symbol: str, price: Decimal) -> None:
        """A lead position this follower has no ratio for (it joined, or the ratio was lost):
        take the ratio as at an open, so the existing position is copied."""
        key = (lead, symbol)
        position = self.engine.lead_position(lead, symbol)
        if lead not in self.settings.sizings or position == 0 or self.ratios.get(key, ZERO) > 0:
            return
        self.ratios[key] = base_ratio(
            self.settings.sizings[lead],
            lead_after=position,
            price=price,
            follower_equity=self.balance.equity,
            lead_equity=self.engine.lead_equity(lead),
        )
        self.journal.save_ratio(lead, self.id, symbol, self.ratios[key])

    def _dispose(
        self,
        lead: str,
        fills: list[str],
        symbol: str,
        kind: Disposition,
        text: str,
        denied: Reason | None = None,
    ) -> None:
        """Record what became of each lead fill for this follower (invariant 1: nothing silent):
        the journal keeps "<kind>: <text>" for people; a denial's code goes to the metrics."""
        self.on_disposed(self, fills)
        for trade_id in fills:
            self.journal.record_deferral(
                lead, self.id, trade_id, symbol, f"{kind.value}: {text}" if text else kind.value
            )
        if fills and denied is not None:
            self.on_denied(self, denied)

    async def _converge(
        self, symbol: str, lead: str, trigger: str, ref_price: Decimal, fills: list[str]
    ) -> None:
        bound = log.bind(follower=self.id, lead=lead, trade_id=trigger, symbol=symbol)
        market = self.markets.get(symbol)
        if market is None:
            denied = Reason(ReasonCode.NOT_LISTED, f"{symbol} is not listed on the follower's venue")
            self._dispose(lead, fills, symbol, Disposition.DENIED, denied.text, denied)
            return
        if self.needs_resync:
            self._dispose(
                lead, fills, symbol, Disposition.DEFERRED, "position unknown after an unsettled order"
            )
            return
        target, clip_reason = self.target(symbol)
        current = self.own(symbol)
        # An IOC entry may fill as low as the bottom of its band: the venue minimum is checked there.
        band = self.settings.limits.slippage_bps
        floor_price = (
            ref_price if self.settings.market_orders or band is None else ref_price * (1 - band / 10_000)
        )
        plan = planner.plan_legs(
            target, current, market, floor_price, round_up_min=self.settings.round_up_min
        )
        if not plan.legs:
            if plan.deferred:
                self._dispose(lead, fills, symbol, Disposition.DEFERRED, plan.deferred)
            elif clip_reason:  # a cap holds the target where it is: the fill is not copied
                self._dispose(lead, fills, symbol, Disposition.DENIED, clip_reason.text, clip_reason)
            else:
                self._dispose(lead, fills, symbol, Disposition.AT_TARGET, "")
            if plan.deferred:
                bound.info("copy_deferred", reason=plan.deferred, target=str(target), current=str(current))
            return
        cids = []
        for leg_no, leg in enumerate(plan.legs):
            cid = clientid.client_order_id(lead, trigger, self.id, symbol, leg_no, self.adapter.client_ids)
            cids.append(cid)
            intent = Intent(
                lead=lead,
                follower=self.id,
                symbol=symbol,
                trigger=trigger,
                leg=leg_no,
                side=leg.side,
                qty=leg.qty,
                # Reduce-only at the venue only when it also reduces the account: the owner may
                # hold the other side (bot.core.manual.account_reduces).
                reduce_only=leg.reduce_only
                and account_reduces(self.position(symbol), leg.qty * leg.side.sign),
                ref_price=ref_price,
                target=target,
                current=self.own(symbol),
                client_order_id=cid,
            )
            decision = risk.evaluate(intent, self.risk_state(), self.settings.limits, market)
            self.journal.record_intent(intent)
            self.journal.record_decision(decision)
            self.on_decision(self, decision)
            if decision.verdict is Verdict.DENIED:
                bound.info("copy_denied", client_order_id=cid, reason=decision.reason)
                continue
            if decision.verdict is Verdict.CLIPPED:
                bound.info("copy_clipped", client_order_id=cid, reason=decision.reason, qty=str(decision.qty))
            await self._send(intent, decision.qty, market, bound)
        note = ",".join(cids) + (f" (target clipped: {clip_reason.text})" if clip_reason else "")
        self._dispose(lead, fills, symbol, Disposition.PLANNED, note)

    async def _send(self, intent: Intent, qty: Decimal, market: MarketSpec, bound: Any) -> None:
        signed = qty if intent.side is Side.BUY else -qty
        symbol = intent.symbol
        self.inflight[symbol] = self.inflight.get(symbol, ZERO) + signed
        band = self.settings.limits.slippage_bps
        price = None
        if (
            band is not None
            and intent.ref_price > 0
            and not intent.reduce_only
            and not self.settings.market_orders
        ):
            price = risk.entry_price_limit(intent.side, intent.ref_price, band, market.tick)
        limit = price is not None
        sent_ns = time.perf_counter_ns()
        order_type = "limit" if limit else "market"
        try:
            outcome = await self.placer.place(intent, qty, order_type=order_type, price=price)
        finally:
            self.inflight[symbol] = self.inflight.get(symbol, ZERO) - signed
        acked_ns = time.perf_counter_ns()
        self.orders_sent += 1
        filled = outcome.filled_qty if intent.side is Side.BUY else -outcome.filled_qty
        if filled and outcome.avg_price:
            protect.on_fill(self, symbol, self.confirmed.get(symbol, ZERO), filled, outcome.avg_price)
        self.confirmed[symbol] = self.confirmed.get(symbol, ZERO) + filled
        if self.manual.accounted is not None:  # copybot's own fill: explained, nothing to read
            self.manual.accounted[symbol] = self.manual.accounted.get(symbol, ZERO) + filled
        if filled and outcome.avg_price:
            self.balance.record_fill(
                self.markets.get(symbol), symbol, filled, outcome.avg_price, self.engine.mark
            )
        self.journal.record_outcome(outcome, self.id, sent_ns=sent_ns, acked_ns=acked_ns)
        bound.info(
            "order_outcome",
            client_order_id=intent.client_order_id,
            status=outcome.status,
            filled=str(outcome.filled_qty),
            avg_price=str(outcome.avg_price) if outcome.avg_price is not None else None,
            error=outcome.error,
        )
        self.on_outcome(self, intent, outcome, sent_ns, acked_ns)
        retry = self.entry_retry.after(intent, qty, outcome, limit=limit)
        if retry is not None:  # re-planned against the target, same band (bot.live.entry_retry)
            delay, trigger = retry
            work = SyncWork(symbol, intent.lead, trigger, intent.ref_price, "entry_retry")
            asyncio.get_running_loop().call_later(delay, self.submit, work)
        if outcome.status is OrderStatus.UNKNOWN:
            self.needs_resync = True
        if outcome.error is ErrorKind.AUTH:
            self.disable(f"authentication failed: {outcome.reason}", StateCode.AUTH_FAILED)

    def disable(self, reason: str, code: StateCode) -> None:
        """HALT this follower alone, with the reason (journaled, alerted, on /status)."""
        if self.state is not TradingState.HALTED:
            log.error("follower_disabled", follower=self.id, code=code.value, reason=reason)
            self.request_state(self, TradingState.HALTED, code, reason)
