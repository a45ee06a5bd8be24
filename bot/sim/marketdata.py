"""Public market-data endpoints of the local exchange: exchangeInfo, time, ping, depth, 24h ticker
and mark price."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.sim.accounts import SimError
from bot.sim.config import MarketConfig
from bot.sim.markprice import premium_of
from bot.sim.matching import MatchingEngine
from bot.sim.wire import s

if TYPE_CHECKING:
    from bot.sim.call import Call

_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SimError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is integers."
        ) from None


def exchange_info(engine: MatchingEngine) -> dict[str, Any]:
    """Built once at start: it never changes while the exchange runs."""

    def symbol(m: MarketConfig) -> dict[str, Any]:
        return {
            "symbol": m.symbol,
            "pair": m.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "status": "TRADING",
            "baseAsset": m.base,
            "quoteAsset": m.quote,
            "marginAsset": m.quote,
            "pricePrecision": max(0, -m.tick.normalize().as_tuple().exponent),  # type: ignore[operator]
            "quantityPrecision": max(0, -m.step.normalize().as_tuple().exponent),  # type: ignore[operator]
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": s(m.tick),
                    "maxPrice": "10000000",
                    "tickSize": s(m.tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": s(m.min_qty),
                    "maxQty": s(m.max_qty),
                    "stepSize": s(m.step),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": s(m.min_qty),
                    "maxQty": s(m.max_qty),
                    "stepSize": s(m.step),
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MIN_NOTIONAL", "notional": s(m.min_notional)},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500"},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        }

    cfg = engine.config
    return {
        "timezone": "UTC",
        "serverTime": now_ms(),
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": cfg.weight_limit_1m,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": cfg.order_limit_1m},
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": cfg.order_limit_10s,
            },
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [symbol(m) for m in engine.config.markets],
    }


def server_time(c: Call) -> Any:
    return {"serverTime": now_ms()}


def ping(c: Call) -> Any:
    return {}


def depth(c: Call) -> Any:
    cfg = c.engine.market(c.params.get("symbol"))
    limit = int_param(c.params, "limit", 500)
    if limit not in _DEPTH_LIMITS:
        raise SimError(-1130, "Invalid data sent for a parameter: limit.")
    book = c.engine.books[cfg.symbol]
    now = now_ms()
    return {
        "lastUpdateId": book.update_id,
        "E": now,
        "T": now,
        "bids": [[s(p), s(q)] for p, q in book.levels(True, limit)],
        "asks": [[s(p), s(q)] for p, q in book.levels(False, limit)],
    }


def _ticker_of(engine: MatchingEngine, symbol: str) -> dict[str, Any]:
    book = engine.books[symbol]
    now = now_ms()
    change = book.last_price - book.open_price
    vwap = book.quote_volume / book.volume if book.volume else book.last_price
    return {
        "symbol": symbol,
        "priceChange": s(change),
        "priceChangePercent": s((change * 100 / book.open_price).quantize(Decimal("0.001"))),
        "weightedAvgPrice": s(vwap.quantize(book.cfg.tick)),
        "lastPrice": s(book.last_price),
        "lastQty": "0",
        "openPrice": s(book.open_price),
        "highPrice": s(book.high),
        "lowPrice": s(book.low),
        "volume": s(book.volume),
        "quoteVolume": s(book.quote_volume),
        "openTime": now - 86_400_000,
        "closeTime": now,
        "firstId": 0,
        "lastId": book.trade_count,
        "count": book.trade_count,
    }


def ticker(c: Call) -> Any:
    if c.params.get("symbol"):
        return _ticker_of(c.engine, c.engine.market(c.params["symbol"]).symbol)
    return [_ticker_of(c.engine, symbol) for symbol in c.engine.books]


def premium(c: Call) -> Any:
    if c.params.get("symbol"):
        return premium_of(c.engine, c.engine.market(c.params["symbol"]).symbol)
    return [premium_of(c.engine, symbol) for symbol in c.engine.books]
