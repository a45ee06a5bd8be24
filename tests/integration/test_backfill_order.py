"""A fill the socket delivers while the backfill is still fetching older fills is handed on after
them, so the journal (which writes in order) never holds a cursor newer than a fill it has not yet
written: a kill -9 between the two would otherwise lose the older fill for good (the next backfill
starts after it). This was the flaky "lead fills missing from the journal" of the kill -9 loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from decimal import Decimal

from bot.venues.ccxt_stream import is_connected
from tests.integration.harness import BTC, Harness, follower


async def test_socket_fills_during_the_backfill_are_journaled_after_it(harness: Harness) -> None:
    h = harness
    h.build_config([follower("f0", {"mode": "multiplier", "multiplier": "0.1"})])
    await h.start_daemon()
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1)
    await h.stop_daemon()
    await h.trade(BTC, "buy", "0.05")  # while down: only the backfill can find it
    # The lead's backfill is slow: the socket is live long before it ends.
    await h.fault(api_key=h.keys["lead"][0], path="/fapi/v1/userTrades", method="GET", delay_ms=1500)
    starting = asyncio.create_task(h.start_daemon(timeout=30))
    deadline = time.monotonic() + 20
    while h.daemon is None or h.daemon.engine is None or "lead" not in h.daemon.engine.feeds:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    feed = h.daemon.engine.feeds["lead"]
    while feed._client is None or not is_connected(feed._client):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await h.trade(BTC, "buy", "0.05")  # arrives on the socket during the backfill
    await starting
    await h.settle(fills=1)  # this run applies only the socket's fill: the backfilled one is in its snapshot
    await h.engine.journal.aflush()
    with sqlite3.connect(h.config["journal"]["path"]) as db:
        rows = db.execute("select ts_ms, source from lead_fills order by rowid").fetchall()
    # Journaled oldest first: the fill made while down (backfill) before the one made during the
    # backfill (held on the socket, or found by the slow backfill itself and deduplicated).
    assert len(rows) == 3, rows
    assert [ts for ts, _ in rows] == sorted(ts for ts, _ in rows), rows
    assert rows[1][1] == "rest", rows
    assert (await h.positions("f0"))["BTCUSDT"] == Decimal("0.015")
