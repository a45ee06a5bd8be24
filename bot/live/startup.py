"""Start-up steps of the engine, in the order that keeps "nothing lost, nothing doubled": the lead's
positions from the venue, then for each follower the intents without a known outcome looked up by
client id BEFORE anything is placed, its positions and balance from the venue, its leverage.

An earlier run killed with orders on the wire (kill -9, a crash) may have orders that are still
queued inside the venue: a lookup does not see them yet, nor do the positions. So when the journal
shows an earlier run, the lookups and position reads wait until every order that run could have
sent can no longer land (its recvWindow passed on the venue's clock): one wait per venue, shared by
all its followers (docs/guarantees.md, "Restarts")."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any, Protocol

import structlog

from bot.core.errors import ErrorKind, short
from bot.core.trading_state import StateCode
from bot.core.types import OrderOutcome, OrderStatus
from bot.live.budget import essential
from bot.live.config_view import EngineConf
from bot.live.executor import ExecSettings, OrderPlacer
from bot.live.follower import FollowerRuntime
from bot.live.lead_state import LeadRuntime
from bot.live.lead_view import follower_symbols, lead_symbol
from bot.live.ports import JournalPort
from bot.live.venue_runtime import Venue

log = structlog.get_logger("copybot.startup")

DEFAULT_LEVERAGE = 5  # when following the lead's leverage and the lead's is not known
# An intent this close to the venue's lookup reach is treated as past it: its order may be older
# than the intent row (clocks, a slow first send) and the lookup's window ends at the venue's now.
LOOKUP_REACH_MARGIN_MS = 3_600_000


class Engine(Protocol):
    """What the start-up steps use of the engine (bot.live.engine.Engine is one); a Protocol, so
    the engine calls these steps without the two modules importing each other."""

    @property
    def cfg(self) -> EngineConf: ...
    @property
    def venues(self) -> Mapping[str, Venue]: ...
    @property
    def journal(self) -> JournalPort: ...
    @property
    def leads(self) -> Mapping[str, LeadRuntime]: ...
    @property
    def marks(self) -> dict[str, Decimal]: ...
    async def resync_follower(self, follower: FollowerRuntime) -> None: ...
    def alert(self, kind: str, subject: str, detail: dict[str, Any], severity: str = "warning") -> None: ...


class KeyRefused(Exception):
    """A lead's key may withdraw funds and the config does not allow that."""


async def load_leads(engine: Engine, lead_state: Callable[[LeadRuntime], Awaitable[None]] | None) -> None:
    """Each lead's positions and equity: from the venue, or from `lead_state` (a cluster shard: the
    state the feed stored in Redis, docs/cluster.md "Lead positions")."""
    if lead_state is None:
        await asyncio.gather(*(snapshot_lead(engine, lead) for lead in engine.leads.values()))
        return
    await asyncio.gather(*(lead_state(lead) for lead in engine.leads.values()))
    for lead in engine.leads.values():
        for symbol, price in lead.entry_prices.items():
            engine.marks.setdefault(symbol, price)


async def snapshot_lead(engine: Engine, lead: LeadRuntime) -> None:
    venue = engine.venues[engine.cfg.lead(lead.id).venue]
    allow = engine.cfg.allow_withdrawal_keys
    budget, adapter, rest = venue.budget, lead.adapter, lead.rest
    problem = await essential(budget, adapter, rest, adapter.weight("key_check"),
                              lambda: adapter.key_problem(rest, venue.mode, allow_withdrawal=allow),
                              what="lead key")  # fmt: skip
    if problem:
        raise KeyRefused(f"leads[{lead.id}]: {problem}")
    server_ms = int(await essential(budget, adapter, rest, adapter.weight("time"), rest.fetch_time,
                                    what="lead time"))  # fmt: skip
    rows = await essential(budget, adapter, rest, adapter.weight("positions"), rest.fetch_positions,
                           what="lead positions")  # fmt: skip
    lead.seed(adapter.positions(rows), server_ms)
    balance = await essential(budget, adapter, rest, adapter.weight("balance"), rest.fetch_balance,
                              what="lead balance")  # fmt: skip
    lead.equity = adapter.equity(balance)
    for symbol, price in lead.entry_prices.items():
        engine.marks.setdefault(symbol, price)
    # A symbol without a durable cursor starts from this snapshot, durably: a later restart then
    # backfills (and journals) every fill since, even if this run dies before any.
    known = engine.journal.cursors(lead.id)
    for symbol in lead.symbols(set(known)) - set(known):
        engine.journal.set_cursor(lead.id, symbol, server_ms, "")
    log.info("lead_snapshot", lead=lead.id, positions={s: str(q) for s, q in lead.positions.items()},
             equity=str(lead.equity))  # fmt: skip


async def prepare_follower(engine: Engine, follower: FollowerRuntime, sem: asyncio.Semaphore) -> None:
    async with sem:
        try:
            venue = engine.venues[engine.cfg.follower(follower.id).venue]
            allow = engine.cfg.allow_withdrawal_keys
            budget, adapter, client = venue.budget, follower.adapter, follower.client
            problem = await essential(
                budget, adapter, client, adapter.weight("key_check"),
                lambda: adapter.key_problem(client, venue.mode, allow_withdrawal=allow), what="key",
            )  # fmt: skip
            if problem:
                follower.disable(f"key refused: {problem}", StateCode.KEY_REFUSED)
                return
            await previous_orders_unlandable(engine, follower)
            await settle_unsettled(engine, follower)
            weight = adapter.weight("positions") + adapter.weight("balance")
            await essential(budget, adapter, client, weight, lambda: engine.resync_follower(follower),
                            what="positions and balance")  # fmt: skip
            await set_leverage(engine, follower)
        except Exception as exc:  # one follower's failure must not stop the others starting
            kind = follower.adapter.classify(exc)
            reason = f"start-up failed ({kind.value}): {short(exc)}"
            if kind is ErrorKind.AUTH:
                follower.disable(reason, StateCode.STARTUP_FAILED)
            else:
                follower.needs_resync = True
                log.error("follower_start_failed", follower=follower.id, error=reason)


async def previous_orders_unlandable(engine: Engine, follower: FollowerRuntime) -> None:
    """Wait until no order of an earlier run can still land (no wait on a fresh journal)."""
    venue = engine.venues[engine.cfg.follower(follower.id).venue]
    await asyncio.shield(start_gate(engine, venue, follower.placer.settings))


def start_gate(engine: Engine, venue: Venue, settings: ExecSettings) -> asyncio.Future[None]:
    """The venue's wait for an earlier run's orders, decided once, from the journal as it is now:
    a cluster shard decides it before it journals any fill (bot/cluster/shard_role.py)."""
    if venue.start_gate is None:
        counts = engine.journal.counts()
        if counts["intents"] == 0 and counts["lead_fills"] == 0:
            venue.start_gate = asyncio.get_running_loop().create_future()
            venue.start_gate.set_result(None)
        else:  # every order of the earlier run was signed before now
            signed_before = venue.clock.now_ms()
            # The venue's time is public: read it with the keyless client, so that one account's
            # bad key cannot fail every follower's start.
            waiter = OrderPlacer(venue.loader, "*", venue.adapter, settings, clock=venue.clock)
            venue.start_gate = asyncio.ensure_future(waiter.wait_until_unlandable(signed_before))
            log.info("waiting_for_earlier_orders", venue=venue.name,
                     until_ms=waiter.landing_deadline_ms(signed_before))  # fmt: skip
    return venue.start_gate


async def settle_unsettled(engine: Engine, follower: FollowerRuntime, now_ms: float | None = None) -> None:
    """Intents approved before a restart but without a known outcome: ask the venue. "Not found"
    means "never placed" only within the venue's lookup reach (Bybit: the last 7 days, the latest
    500 orders); an older intent not found may have filled, so it is UNRESOLVED, alerted with the
    follower and the client id, and the follower's positions are taken from the venue instead."""
    reach = follower.adapter.lookup_reach_ms
    now = time.time() * 1000 if now_ms is None else now_ms
    for intent in engine.journal.unsettled_intents(follower.id):
        cid = intent.client_order_id
        found = await follower.placer.lookup(intent.symbol, cid)
        outcome = found or OrderOutcome(cid, OrderStatus.NOT_PLACED, reason="not at venue")
        if found is None and reach is not None:
            created = engine.journal.intent_created_ms(cid)
            if created is None or now - created >= reach - LOOKUP_REACH_MARGIN_MS:
                reason = f"not found, but older than what a lookup at {follower.adapter.name} can see"
                outcome = OrderOutcome(cid, OrderStatus.UNRESOLVED, reason=reason)
                follower.needs_resync = True  # start-up reads its positions next
                engine.alert("intent_unresolved", follower.id, {
                    "follower": follower.id, "client_order_id": cid, "symbol": intent.symbol,
                    "created_ms": created, "reason": reason + "; positions are read from the venue",
                })  # fmt: skip
        engine.journal.record_outcome(outcome, follower.id)
        log.info("intent_settled_on_start", follower=follower.id, client_order_id=cid, status=outcome.status)


def lead_leverage(engine: Engine, follower: FollowerRuntime, symbol: str) -> int:
    known = [
        engine.leads[lead].leverage.get(lead_symbol(follower, lead, symbol))
        for lead in follower.settings.sizings
    ]
    return next((lev for lev in known if lev), DEFAULT_LEVERAGE)


async def set_leverage(engine: Engine, follower: FollowerRuntime) -> None:
    """Leverage (fixed, or the lead's) and margin mode, on every symbol the leads trade, before the
    first copy."""
    cfg = engine.cfg.follower(follower.id)
    symbols: set[str] = set()
    for lead in follower.settings.sizings:
        runtime = engine.leads[lead]
        lead_symbols = set(runtime.symbols_configured or ()) | set(runtime.positions)
        symbols |= follower_symbols(follower, lead, lead_symbols)
    for symbol in sorted(s for s in symbols if s in follower.markets):
        fixed = cfg.leverage != "lead"
        leverage = int(cfg.leverage) if fixed else lead_leverage(engine, follower, symbol)
        await _unless_benign(engine, follower, partial(follower.client.set_leverage, leverage, symbol))
        if cfg.margin_mode != "cross":
            await _unless_benign(
                engine, follower, partial(follower.client.set_margin_mode, cfg.margin_mode, symbol)
            )


async def _unless_benign(
    engine: Engine, follower: FollowerRuntime, call: Callable[[], Awaitable[Any]]
) -> None:
    """A venue's "already so" answer (leverage not modified, no need to change margin type) is success."""
    venue = engine.venues[engine.cfg.follower(follower.id).venue]
    adapter = follower.adapter
    try:
        await essential(
            venue.budget, adapter, follower.client, adapter.weight("leverage"), call, what="leverage"
        )
    except Exception as exc:
        if not adapter.is_benign(exc):
            raise


async def prepare_followers(engine: Engine, followers: list[FollowerRuntime], sem: asyncio.Semaphore,
                            *, every_s: float = 2.0) -> None:  # fmt: skip
    """prepare_follower for all of them, logging progress every `every_s` while it lasts: with a
    thousand followers start-up takes a while (paced by the venue's request budget), and a silent
    minute looks like a hang."""
    total, done = len(followers), 0

    async def one(follower: FollowerRuntime) -> None:
        nonlocal done
        try:
            await prepare_follower(engine, follower, sem)
        finally:
            done += 1

    async def report() -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(every_s)
            log.info("startup_progress", prepared=done, followers=total,
                     elapsed_s=round(time.monotonic() - started, 1))  # fmt: skip

    reporter = asyncio.create_task(report(), name="startup-progress")
    try:
        await asyncio.gather(*(one(f) for f in followers))
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
