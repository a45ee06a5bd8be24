"""Followers joining and leaving the running engine: the pipeline's side of runtime membership.

A joiner is built and checked exactly as at start (its key may not withdraw, its positions and
balance are read, its leverage set: bot.live.startup.prepare_follower) before it is fed any fill;
what it gets of the positions its leads already hold follows its `on_join` (bot.core.join_leave):
`copy_open` converges them through its own queue like a reconciliation, unless the price guard
refuses one; `new_only` holds them out until the lead closes or reopens them. Every await happens
before the follower is registered, so no lead fill can reach it before its holds are in place.

A leaver is dropped from the fan-out at once (`keep`), or moved to `Engine.departing_of` while it
closes (`close`) or copies only the lead's exits (`follow_exits`), then retired when flat: its worker
is stopped once its queue is drained and nothing is in flight, its client closed.

Validation against the config, the journal of who changed what, the AUM cap and the rule for
restarts live in the service layer (bot/service/membership.py). See docs/config.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

import structlog

from bot.core.errors import short
from bot.core.join_leave import join_refusal
from bot.core.rounding import dec
from bot.core.types import ZERO, TradingState
from bot.live import follower_worker
from bot.live.budget import essential
from bot.live.config_view import FollowerConf
from bot.live.engine import Engine
from bot.live.follower import FollowerRuntime
from bot.live.lead_view import follower_symbols
from bot.live.startup import prepare_follower
from bot.live.work import FollowerSettings, SyncWork

log = structlog.get_logger("copybot.membership")

NEW_ONLY_REASON = "new_only: the lead held this position when the follower joined"


class AdmissionRefused(Exception):
    """A joiner failed the start-up checks (key, login, positions): it was not admitted."""


@dataclass(frozen=True, slots=True)
class JoinPolicy:
    on_join: str  # "copy_open" | "new_only"
    max_adverse_bps: Decimal | None = None


@dataclass
class JoinPlan:
    """What a joiner copies of the positions its leads hold: (lead, its symbol) -> why not."""

    holds: dict[tuple[str, str], str] = field(default_factory=dict)
    work: list[SyncWork] = field(default_factory=list)

    def report(self) -> dict[str, object]:
        return {
            "copied": sorted(f"{w.lead}:{w.symbol}" for w in self.work),
            "not_copied": {f"{lead}:{symbol}": why for (lead, symbol), why in sorted(self.holds.items())},
        }


async def prepare_joiner(engine: Engine, cfg: FollowerConf, settings: FollowerSettings) -> FollowerRuntime:
    """Build a joiner and run the start-up checks on it; `engine.cfg` must already list it."""
    follower = engine.build_follower(cfg, settings)
    # As at a restart: an operator's pause or halt recorded for this id, or a stop, comes back.
    engine.states.restore({follower.id: follower.standing})
    await prepare_follower(engine, follower, asyncio.Semaphore(1))
    if follower.state is TradingState.HALTED or follower.needs_resync:
        reason = follower.state_reason or "its positions and balance could not be read"
        await close_client(follower)
        raise AdmissionRefused(reason)
    return follower


async def plan_join(
    engine: Engine, follower: FollowerRuntime, policies: Mapping[str, JoinPolicy]
) -> JoinPlan:
    """Decide, per lead position held now, whether the joiner copies it (reads the lead's entries
    and current prices only when a price guard is set)."""
    plan = JoinPlan()
    trigger = f"jn{int(time.time() * 1000)}"
    for lead_id, policy in policies.items():
        lead = engine.leads[lead_id]
        held = {s: q for s, q in lead.positions.items() if q != 0}
        entries: dict[str, Decimal] = {}
        prices: dict[str, Decimal | None] = {}
        if held and policy.on_join == "copy_open" and policy.max_adverse_bps is not None:
            entries, prices = await _entries_and_prices(engine, lead_id, held)
        for lead_symbol, qty in sorted(held.items()):
            for symbol in follower_symbols(follower, lead_id, [lead_symbol]):
                reason: str | None = NEW_ONLY_REASON
                if policy.on_join != "new_only":
                    price = prices.get(lead_symbol)
                    reason = join_refusal(qty, entries.get(lead_symbol, ZERO), price, policy.max_adverse_bps)
                if reason is not None:
                    plan.holds[(lead_id, symbol)] = reason
                    continue
                ref = follower.engine.mark(symbol) or ZERO
                plan.work.append(SyncWork(symbol, lead_id, trigger, ref, "join"))
    return plan


async def _entries_and_prices(
    engine: Engine, lead_id: str, held: dict[str, Decimal]
) -> tuple[dict[str, Decimal], dict[str, Decimal | None]]:
    """The lead's entry prices (from the venue) and the price a copier entering now would pay: the
    best ask for a long, the best bid for a short."""
    lead = engine.leads[lead_id]
    budget, adapter, rest = engine.venues[engine.cfg.lead(lead_id).venue].budget, lead.adapter, lead.rest
    if engine.lead_positions_from == "stream":  # a shard has no lead key: the feed's state has them
        entries = dict(lead.entry_prices)
    else:
        rows = await essential(
            budget, adapter, rest, adapter.weight("positions"), rest.fetch_positions, what="lead positions"
        )
        entries = {s: p.entry_price for s, p in adapter.positions(rows).items()}
    prices: dict[str, Decimal | None] = {}
    for symbol, qty in sorted(held.items()):
        book = await essential(
            budget, adapter, rest, adapter.weight("order_book"), partial(rest.fetch_order_book, symbol, 5),
            what="order book",
        )  # fmt: skip
        side = book.get("asks") if qty > 0 else book.get("bids")
        prices[symbol] = dec(side[0][0]) if side else None
    return entries, prices


def register(
    engine: Engine,
    follower: FollowerRuntime,
    plan: JoinPlan,
    on_hold_cleared: Callable[[FollowerRuntime, str, str], None],
) -> None:
    """Feed the joiner the lead fills from now on and start its worker (no await: atomic)."""
    follower.holds.update(plan.holds)
    follower.on_hold_cleared = on_hold_cleared
    engine.followers[follower.id] = follower
    for lead in follower.settings.sizings:
        engine.followers_of.setdefault(lead, []).append(follower)
    engine.supervisor.spawn(f"follower:{follower.id}", partial(follower_worker.run, follower))
    for work in plan.work:
        follower.submit(work)
    log.info("follower_joined", follower=follower.id, **plan.report())


def start_leaving(engine: Engine, follower: FollowerRuntime, on_leave: str) -> None:
    """Stop counting `follower` as a follower of its leads; with `close` or `follow_exits` keep it
    fed (engine.departing_of) until `finished`."""
    for lead in follower.settings.sizings:
        members = engine.followers_of.get(lead, [])
        if follower in members:
            members.remove(follower)
        if on_leave != "keep":
            engine.departing_of.setdefault(lead, []).append(follower)
    follower.leaving = on_leave
    if on_leave == "close":
        trigger = f"lv{int(time.time() * 1000)}"
        for symbol, qty in sorted(follower.confirmed.items()):
            if qty != 0:
                lead = _lead_for(follower, symbol)
                follower.submit(
                    SyncWork(symbol, lead, trigger, follower.engine.mark(symbol) or ZERO, "leave")
                )
    log.info("follower_leaving", follower=follower.id, on_leave=on_leave)


def _lead_for(follower: FollowerRuntime, symbol: str) -> str:
    for lead in follower.settings.sizings:
        if follower.engine.lead_position(lead, symbol):
            return lead
    return next(iter(follower.settings.sizings))


def idle(follower: FollowerRuntime) -> bool:
    return (
        follower.queue.empty()
        and not follower.busy
        and not follower.retry_pending
        and not any(follower.inflight.values())
    )


def finished(follower: FollowerRuntime) -> bool:
    """A leaver with nothing left to do: `keep`, or flat (close, follow_exits), and idle."""
    # Flat as far as copybot is concerned: the owner's hand-traded quantity is his (bot.core.manual).
    flat = follower.leaving == "keep" or not any(follower.own(s) for s in follower.confirmed)
    return flat and idle(follower)


async def retire(engine: Engine, follower: FollowerRuntime, drain_timeout_s: float) -> bool:
    """Drop a leaver from every fan-out, let its in-flight work finish (bounded), stop its worker
    and close its client. Returns whether it drained in time."""
    for table in (engine.followers_of, engine.departing_of):
        for members in table.values():
            if follower in members:
                members.remove(follower)
    deadline = time.monotonic() + drain_timeout_s
    while not idle(follower) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    drained = idle(follower)
    await engine.supervisor.retire(f"follower:{follower.id}")
    await close_client(follower)
    engine.followers.pop(follower.id, None)
    log.info("follower_left", follower=follower.id, drained=drained)
    return drained


async def close_client(follower: FollowerRuntime) -> None:
    try:
        await follower.client.close()
    except Exception as exc:  # closing must not fail a membership change
        log.warning("follower_client_close_failed", follower=follower.id, error=short(exc))
