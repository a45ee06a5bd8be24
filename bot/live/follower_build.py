"""Building a follower's runtime (its client, order placer, journal state and hooks) and adopting
the venue's account as the truth for it. Start-up, joins at run time (bot/live/membership.py) and a
cluster shard gaining a partition (bot/cluster/shard_role.py) all build followers here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import structlog

from bot.core.errors import short
from bot.core.trading_state import StateChange, StateCode
from bot.core.types import ZERO, TradingState
from bot.live import manual_trades, protect, stops
from bot.live.config_view import EngineConf, FollowerConf
from bot.live.executor import ExecSettings, OrderPlacer
from bot.live.follower import FollowerRuntime
from bot.live.follower_events import FollowerEvents
from bot.live.lead_view import LeadView
from bot.live.ports import JournalPort
from bot.live.supervisor import Supervisor
from bot.live.venue_runtime import Venue
from bot.live.work import FollowerSettings

log = structlog.get_logger("copybot.engine")


class Engine(Protocol):
    """What building a follower uses of the engine (bot.live.engine.Engine is one); a Protocol, so
    the two modules do not import each other."""

    @property
    def cfg(self) -> EngineConf: ...
    @property
    def venues(self) -> Mapping[str, Venue]: ...
    @property
    def journal(self) -> JournalPort: ...
    @property
    def marks(self) -> dict[str, Decimal]: ...
    @property
    def events(self) -> FollowerEvents: ...
    @property
    def supervisor(self) -> Supervisor: ...
    @property
    def followers(self) -> Mapping[str, FollowerRuntime]: ...
    @property
    def send_fence(self) -> Callable[[], str | None]: ...
    def client_for(
        self, venue: Venue, account_id: str, *, pro: bool = False, timeout_ms: int | None = None
    ) -> Any: ...
    def set_follower_state(
        self, follower: FollowerRuntime, state: TradingState, code: StateCode, reason: str
    ) -> StateChange: ...
    def disposed(self, follower: FollowerRuntime, trade_ids: list[str]) -> None: ...
    def alert(self, kind: str, subject: str, detail: dict[str, Any], severity: str = "warning") -> None: ...


def build(engine: Engine, cfg: FollowerConf, settings: FollowerSettings) -> FollowerRuntime:
    """A follower's runtime and client, not yet fed any fill (start-up, or a join at run time:
    bot/live/membership.py)."""
    venue = engine.venues[cfg.venue]
    # A follower's client waits at most order_timeout_ms: past that, an order is ambiguous and
    # is settled by looking it up.
    client = engine.client_for(venue, cfg.id, timeout_ms=engine.cfg.executor.order_timeout_ms)
    ex = engine.cfg.executor
    follower = FollowerRuntime(
        settings=settings,
        client=client,
        adapter=venue.adapter,
        markets=venue.markets,
        engine=LeadView.of(engine, cfg.venue),  # the leads in this follower's symbols and units
        journal=engine.journal,
        placer=OrderPlacer(
            client,
            cfg.id,
            venue.adapter,
            ExecSettings(
                lookup_attempts=ex.lookup_attempts,
                recv_window_ms=ex.recv_window_ms,
                landing_margin_ms=ex.landing_margin_ms,
            ),
            slots=venue.send_slots,
            clock=venue.clock,
            fence=lambda: engine.send_fence(),
        ),
        request_state=engine.set_follower_state,
        on_outcome=engine.events.outcome,
        on_decision=engine.events.decision,
        on_denied=engine.events.denied,
        on_batch_failed=engine.events.batch_failed,
        on_batch_ok=lambda f: engine.supervisor.succeeded(f"follower:{f.id}"),
        on_disposed=engine.disposed,
    )
    follower.manual = manual_trades.load(engine.journal, cfg.id)
    follower.ratios = {
        (lead, symbol): ratio for (lead, symbol), ratio in engine.journal.load_ratios(cfg.id).items()
    }
    protect.load(follower)
    follower.charge_weight = venue.budget.charge
    follower.on_protect_triggered = lambda f, detail: engine.alert(
        "tpsl_triggered", f.id, detail, severity="info"
    )
    return follower


async def resync(engine: Engine, follower: FollowerRuntime) -> None:
    """Adopt the venue's positions and equity as the truth: the follower's ledger is rebased
    on them (bot.live.work.Balance), and its stops see the result."""
    positions = follower.adapter.positions(await follower.client.fetch_positions())
    account = follower.adapter.equity(await follower.client.fetch_balance())
    follower.confirmed = {s: p.qty for s, p in positions.items() if p.qty != 0}
    follower.entries = {s: p.entry_price for s, p in positions.items() if p.qty != 0}
    for symbol, p in positions.items():
        if p.entry_price > 0:
            engine.marks.setdefault(symbol, p.entry_price)
    balance = follower.balance
    balance.rebase(account, positions, follower.markets, follower.engine.mark)
    if not balance.allocation_base:
        allocations = [s.allocation for s in follower.settings.sizings.values() if s.allocation]
        balance.allocation_base = sum(allocations, ZERO) if allocations else account
    follower.needs_resync = False
    stops.check(engine, follower)
    try:
        await protect.check(follower)  # TP/SL that triggered at the venue pause the copy
    except Exception as exc:  # asked again at the next account read
        log.warning("protect_check_failed", follower=follower.id, error=short(exc))
