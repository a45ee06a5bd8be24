"""Binance USD-M's mark price streams on the local exchange's Binance websocket host.

Binance ("Mark Price Stream", "Mark Price Stream for All market"): `<symbol>@markPrice` every 3 s,
`<symbol>@markPrice@1s` every second, `!markPrice@arr` / `!markPrice@arr@1s` for every market in
one array; subscribed with `{"method": "SUBSCRIBE", "params": [...], "id": N}` and answered
`{"result": null, "id": N}`. Events carry e, E, s, p (mark), i (index), P (estimated settle),
r (funding rate), T (next funding time), as the REST premiumIndex gives them.
"""

from __future__ import annotations

import time
from typing import Any

from bot.sim.marketstream import PublicConn
from bot.sim.matching import MatchingEngine
from bot.sim.wire import s

_ALL = "!markPrice@arr"
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS")


def premium_of(engine: MatchingEngine, symbol: str) -> dict[str, Any]:
    """The premiumIndex row of one market: REST and the mark price streams give the same figures."""
    mark = s(engine.books[symbol].fair)
    now = time.time_ns() // 1_000_000
    return {
        "symbol": symbol,
        "markPrice": mark,
        "indexPrice": mark,
        "estimatedSettlePrice": mark,
        "lastFundingRate": f"{engine.funding_rate:.8f}",
        "interestRate": "0.00010000",
        "nextFundingTime": engine.next_funding_ms(now),
        "time": now,
    }


def _event(engine: MatchingEngine, symbol: str) -> dict[str, Any]:
    row = premium_of(engine, symbol)
    return {
        "e": "markPriceUpdate",
        "E": row["time"],
        "s": symbol,
        "p": row["markPrice"],
        "i": row["indexPrice"],
        "P": row["estimatedSettlePrice"],
        "r": row["lastFundingRate"],
        "T": row["nextFundingTime"],
    }


def _error(code: int, msg: str, request_id: Any) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": request_id}


class BinanceMarkPrices:
    """The `PublicProtocol` of Binance's market streams (mark prices only)."""

    def __init__(self, engine: MatchingEngine) -> None:
        self.engine = engine
        self._by_lower = {symbol.lower(): symbol for symbol in engine.books}

    def cadence_s(self, stream: str) -> float | None:
        """Seconds between pushes of a stream this host serves, None for any other name."""
        base, one_s = (stream[:-3], True) if stream.endswith("@1s") else (stream, False)
        if base == _ALL or (base.endswith("@markPrice") and base[: -len("@markPrice")] in self._by_lower):
            return 1.0 if one_s else 3.0
        return None

    def on_message(self, conn: PublicConn, message: Any) -> None:
        if not isinstance(message, dict):
            conn.send(_error(3, "Invalid JSON: expected an object", None))
            return
        request_id = message.get("id")
        method = message.get("method")
        if not isinstance(request_id, int) or isinstance(request_id, bool) or request_id < 0:
            conn.send(_error(2, "Invalid request: request ID must be an unsigned integer", request_id))
            return
        if method not in _METHODS:
            expected = ", ".join(_METHODS)
            conn.send(_error(2, f"Invalid request: unknown variant {method!r}, expected one of {expected}",
                             request_id))  # fmt: skip
            return
        if method == "LIST_SUBSCRIPTIONS":
            conn.send({"result": sorted(conn.topics), "id": request_id})
            return
        params = message.get("params")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            conn.send(_error(2, "Invalid request: params must be a list of stream names", request_id))
            return
        if method == "UNSUBSCRIBE":
            conn.topics.difference_update(params)
            conn.send({"result": None, "id": request_id})
            return
        unknown = [p for p in params if self.cadence_s(p) is None]
        if unknown:
            # Binance serves every market stream; this host only mark prices of its own markets.
            conn.send(_error(2, f"Invalid request: stream not served by the local exchange: {unknown}",
                             request_id))  # fmt: skip
            return
        for stream in params:
            conn.topics.add(stream)
            conn.due.setdefault(stream, 0.0)  # the first event goes out at the next tick
        conn.send({"result": None, "id": request_id})

    def on_tick(self, conn: PublicConn, now: float) -> None:
        for stream in sorted(conn.topics):
            if conn.due.get(stream, 0.0) > now:
                continue
            cadence = self.cadence_s(stream) or 1.0
            # Keep to the cadence's grid, so a late tick does not shift every later push.
            due = conn.due.get(stream, 0.0)
            conn.due[stream] = due + cadence if due and now - due < cadence else now + cadence
            if stream.startswith(_ALL):
                conn.send([_event(self.engine, symbol) for symbol in self.engine.books])
            else:
                symbol = self._by_lower[stream.split("@", 1)[0]]
                conn.send(_event(self.engine, symbol))
