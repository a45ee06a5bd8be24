"""Bybit V5's public `tickers` stream (`/v5/public/linear`) on the Bybit websocket host.

Bybit ("Ticker", V5 websocket public): `{"op": "subscribe", "args": ["tickers.BTCUSDT"]}` is
answered `{"success": true, "ret_msg": "", "conn_id": ..., "op": "subscribe"}`; then a `snapshot`
with every field of the REST ticker, and `delta` frames carrying only the fields that changed
(derivatives push every 100 ms when something changed). `{"op": "ping"}` is answered with a pong.
"""

from __future__ import annotations

from typing import Any

from bot.sim.bybit.market import ticker_of
from bot.sim.bybit.venue import BybitVenue
from bot.sim.marketstream import PublicConn
from bot.sim.matching import MatchingEngine

PUBLIC_PATH = "/v5/public/linear"
_PREFIX = "tickers."
# Fields that move without news (the funding clock) are left out of the change test.
_QUIET = frozenset({"nextFundingTime"})


class BybitTickers:
    """The `PublicProtocol` of Bybit's public linear stream (tickers only)."""

    def __init__(self, engine: MatchingEngine, venue: BybitVenue) -> None:
        self.engine = engine
        self.venue = venue
        self._seq = 0

    def _frame(self, topic: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        return {"topic": topic, "type": kind, "data": data, "cs": self._seq, "ts": self.venue.now_ms()}

    def _ticker(self, topic: str) -> dict[str, str]:
        return ticker_of(self.engine, self.venue.markets[topic[len(_PREFIX) :]], self.venue.now_ms())

    def on_message(self, conn: PublicConn, message: Any) -> None:
        if not isinstance(message, dict):
            conn.send({"success": False, "ret_msg": "error:invalid op", "conn_id": conn.conn_id})
            return
        op = message.get("op")
        base: dict[str, Any] = {"conn_id": conn.conn_id, "op": op}
        if "req_id" in message:
            base["req_id"] = message["req_id"]
        if op == "ping":
            conn.send(base | {"success": True, "ret_msg": "pong"})
            return
        if op not in ("subscribe", "unsubscribe"):
            conn.send(base | {"success": False, "ret_msg": f"error:invalid op {op}"})
            return
        args = message.get("args")
        served = isinstance(args, list) and all(
            isinstance(a, str) and a.startswith(_PREFIX) and a[len(_PREFIX) :] in self.venue.markets
            for a in args
        )
        if not served:
            conn.send(base | {"success": False, "ret_msg": f"error:handler not found,topic:{args}"})
            return
        assert isinstance(args, list)
        if op == "unsubscribe":
            conn.topics.difference_update(args)
            for topic in args:
                conn.sent.pop(topic, None)
            conn.send(base | {"success": True, "ret_msg": ""})
            return
        conn.send(base | {"success": True, "ret_msg": ""})
        for topic in args:
            if topic in conn.topics:
                continue
            conn.topics.add(topic)
            data = self._ticker(topic)
            conn.sent[topic] = data
            conn.send(self._frame(topic, "snapshot", data))

    def on_tick(self, conn: PublicConn, now: float) -> None:
        for topic in sorted(conn.topics):
            data = self._ticker(topic)
            last = conn.sent.get(topic, {})
            changed = {k: v for k, v in data.items() if last.get(k) != v and k not in _QUIET}
            if changed:
                conn.sent[topic] = data
                conn.send(self._frame(topic, "delta", {"symbol": data["symbol"], **changed}))
