"""An intent left by an earlier run and older than what a Bybit lookup can see (order history: the
last 7 days; realtime: the latest 500 orders) is not taken as "never placed" when the lookup finds
nothing: it may have filled. Start-up marks it UNRESOLVED, alerts with the follower and the client
id, and takes the follower's positions from the venue, where the fill shows."""

from __future__ import annotations

import sqlite3
import time
from decimal import Decimal
from pathlib import Path

from bot.core import clientid
from bot.core.types import Decision, Intent, Side, Verdict
from bot.journal.store import Journal
from bot.venues import VenueMode, make_rest
from bot.venues.bybit.adapter import BYBIT
from bot.venues.bybit.history import LOOKUP_REACH_MS
from tests.integration.harness import BTC, Harness, follower

DAY_MS = 86_400_000


def journal_intent(path: str, cid: str, trigger: str, created_ms: int) -> None:
    """An approved intent without an outcome, as a run killed mid-send leaves it."""
    intent = Intent(lead="lead", follower="byb", symbol=BTC, trigger=trigger, leg=0, side=Side.BUY,
                    qty=Decimal("0.005"), reduce_only=False, ref_price=Decimal(60_000),
                    target=Decimal("0.005"), current=Decimal(0), client_order_id=cid)  # fmt: skip
    journal = Journal.open(path)
    try:
        journal.record_intent(intent)
        journal.record_decision(Decision(intent, Verdict.APPROVED, intent.qty))
        journal.flush()
    finally:
        journal.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE intents SET created_ts = ? WHERE client_order_id = ?", (created_ms, cid))


async def test_an_intent_past_bybits_lookup_reach_is_unresolved_not_unplaced(tmp_path: Path) -> None:
    async with Harness(tmp_path, follower_venue="bybit") as h:
        h.build_config([follower("byb", {"mode": "multiplier", "multiplier": "0.1"})])
        path = h.config["journal"]["path"]
        now = int(time.time() * 1000)
        old = clientid.client_order_id("lead", "old-fill", "byb", BTC, 0, BYBIT.client_ids)
        recent = clientid.client_order_id("lead", "recent-fill", "byb", BTC, 0, BYBIT.client_ids)
        journal_intent(path, old, "old-fill", now - LOOKUP_REACH_MS - DAY_MS)
        journal_intent(path, recent, "recent-fill", now - DAY_MS)
        # The old order did fill, long ago: the venue's positions show it, its order history no
        # longer does (here: the fill came from an order under another id).
        key, secret = h.keys["byb"]
        urls = h.sim.urls["bybit"]
        client = make_rest("bybit", VenueMode.SIM, api_key=key, secret=secret, rest_url=urls["rest"],
                           ws_url=urls["ws"])  # fmt: skip
        try:
            await client.load_markets()
            await client.create_order(BTC, "market", "buy", "0.005")
        finally:
            await client.close()

        engine = await h.start_daemon()
        await h.settle()
        with sqlite3.connect(path) as db:
            status = dict(db.execute("SELECT client_order_id, status FROM orders"))
            events = list(
                db.execute("SELECT kind, subject, detail FROM events WHERE kind = 'intent_unresolved'")
            )
        assert status[old] == "unresolved"
        assert status[recent] == "not_placed"  # within reach, "not found" does mean never placed
        ((kind, subject, detail),) = events
        assert subject == "byb"
        assert old in detail
        assert "byb" in detail
        # Positions came from the venue: the start reconciliation flattened the unexplained long
        # (the lead is flat) instead of trusting "not placed".
        assert (await h.positions("byb")).get("BTCUSDT", Decimal(0)) == 0
        assert not engine.followers["byb"].needs_resync
