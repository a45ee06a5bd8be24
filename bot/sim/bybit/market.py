"""Bybit V5 market data endpoints (public): server time, instruments, tickers, order book."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.sim.bybit.call import Call, category_of, int_param
from bot.sim.bybit.venue import BybitError, BybitMarket
from bot.sim.matching import MatchingEngine
from bot.sim.wire import s


def market_time(c: Call) -> Any:
    ns = c.venue.now_ns()
    return {"timeSecond": str(ns // 1_000_000_000), "timeNano": str(ns)}


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def instrument(m: BybitMarket) -> dict[str, Any]:
    cfg = m.cfg
    return {
        "symbol": m.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": m.base,
        "quoteCoin": cfg.quote,
        "settleCoin": cfg.quote,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(_decimals(m.tick)),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": f"{cfg.max_leverage}.00",
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": s(m.tick),
            "maxPrice": s(m.price_out(Decimal(10_000_000))),
            "tickSize": s(m.tick),
        },
        "lotSizeFilter": {
            "maxOrderQty": s(m.qty_out(cfg.max_qty)),
            "minOrderQty": s(m.qty_out(cfg.min_qty)),
            "qtyStep": s(m.step),
            "postOnlyMaxOrderQty": s(m.qty_out(cfg.max_qty)),
            "maxMktOrderQty": s(m.qty_out(cfg.max_qty)),
            "minNotionalValue": s(cfg.min_notional),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "displayName": "",
    }


def instruments_info(c: Call) -> Any:
    category = category_of(c, only_linear=False)
    rows: list[dict[str, Any]] = []
    # Other categories, and the PreLaunch listing ccxt asks for, are empty here.
    if category == "linear" and c.params.get("status", "Trading") == "Trading":
        wanted = c.params.get("symbol")
        if wanted:
            rows = [instrument(c.venue.market(wanted))]
        else:
            rows = [instrument(m) for m in c.venue.markets.values()]
    return {"category": category, "list": rows, "nextPageCursor": ""}


def ticker_of(engine: MatchingEngine, m: BybitMarket, now: int) -> dict[str, Any]:
    """One linear ticker as REST and the public `tickers` stream give it (`now`: the venue's clock)."""
    book = engine.books[m.engine_symbol]
    bid, ask = book.levels(True, 1), book.levels(False, 1)
    offset = engine.config.bybit.clock_offset_ms  # funding times are on the engine's clock
    out = m.price_out
    change = (book.last_price - book.open_price) / book.open_price
    return {
        "symbol": m.symbol,
        "lastPrice": s(out(book.last_price)),
        "indexPrice": s(out(book.fair)),
        "markPrice": s(out(book.fair)),
        "prevPrice24h": s(out(book.open_price)),
        "price24hPcnt": s(change.quantize(Decimal("0.000001"))),
        "highPrice24h": s(out(book.high)),
        "lowPrice24h": s(out(book.low)),
        "prevPrice1h": s(out(book.open_price)),
        "openInterest": "0",
        "openInterestValue": "0",
        "turnover24h": s(book.quote_volume),
        "volume24h": s(m.qty_out(book.volume)),
        "fundingRate": s(engine.funding_rate),
        "nextFundingTime": str(engine.next_funding_ms(now - offset) + offset),
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        "ask1Size": s(m.qty_out(ask[0][1])) if ask else "0",
        "bid1Price": s(out(bid[0][0])) if bid else "0",
        "ask1Price": s(out(ask[0][0])) if ask else "0",
        "bid1Size": s(m.qty_out(bid[0][1])) if bid else "0",
        "basis": "",
    }


def tickers(c: Call) -> Any:
    category_of(c)
    if c.params.get("symbol"):
        rows = [ticker_of(c.engine, c.venue.market(c.params["symbol"]), c.venue.now_ms())]
    else:
        rows = [ticker_of(c.engine, m, c.venue.now_ms()) for m in c.venue.markets.values()]
    return {"category": "linear", "list": rows}


def orderbook(c: Call) -> Any:
    category_of(c)
    m = c.venue.market(c.params.get("symbol"))
    limit = int_param(c.params, "limit", 25)
    if not 1 <= limit <= 500:
        raise BybitError(10001, "params error: limit invalid")
    book = c.engine.books[m.engine_symbol]
    now = c.venue.now_ms()
    return {
        "s": m.symbol,
        "b": [[s(m.price_out(p)), s(m.qty_out(q))] for p, q in book.levels(True, limit)],
        "a": [[s(m.price_out(p)), s(m.qty_out(q))] for p, q in book.levels(False, limit)],
        "ts": now,
        "u": book.update_id,
        "seq": book.update_id,
        "cts": now,
    }
