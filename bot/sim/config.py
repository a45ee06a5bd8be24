"""Configuration of the local exchange: its markets and the limits of its protocol.

Loaded from YAML (the packaged `default.yaml` when no file is given) into frozen pydantic models, so a
typo in a market file fails at start with the offending key named.
"""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class VenueListing(BaseModel):
    """How one venue lists an engine market when it differs from the engine's own view: its symbol,
    base coin, and how many venue units make one engine unit (venue qty = engine qty x multiplier,
    venue price = engine price / multiplier)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    base: str
    multiplier: Decimal = Field(default=Decimal(1), gt=0)


class BybitSettings(BaseModel):
    """The Bybit V5 personality: per-UID request limits per endpoint and second."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # path -> requests per second per UID; paths not listed get default_rate_limit
    rate_limits: dict[str, int] = Field(default_factory=dict)
    default_rate_limit: int = Field(default=50, gt=0)
    recv_window_default_ms: int = Field(default=5000, gt=0)
    # How far this personality's clock is ahead of the process's (negative: behind): its server
    # time, signature window and every timestamp it emits are shifted, as a venue's own clock is
    # never the client's. The admin API keeps the process clock (docs/sim.md, "Clock").
    clock_offset_ms: int = 0


class MarketConfig(BaseModel):
    """One perpetual market and the synthetic liquidity around its fair price."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str  # venue id, e.g. "BTCUSDT"
    base: str
    quote: str = "USDT"
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal = Decimal(5)
    price: Decimal  # initial fair price
    depth_per_level: Decimal  # base quantity offered at each level on each side
    levels: int = Field(gt=0, le=1000)
    level_spacing_ticks: int = Field(default=1, gt=0)
    volatility: Decimal = Decimal("0.0005")  # stdev of the fair-price return per second
    seed: int = 1
    refill_per_s: Decimal = Decimal("0.5")  # fraction of depth_per_level restored per second
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    max_leverage: int = Field(default=20, gt=0, le=125)
    # venue -> listing under another name / contract multiplier (absent: same symbol, multiplier 1)
    listings: dict[str, VenueListing] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_steps(self) -> MarketConfig:
        for name in ("tick", "step", "price", "depth_per_level", "min_qty", "max_qty"):
            if getattr(self, name) <= 0:
                raise ValueError(f"market {self.symbol}: {name} must be positive")
        if self.min_qty > self.max_qty:
            raise ValueError(f"market {self.symbol}: min_qty exceeds max_qty")
        return self


class SimConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    markets: tuple[MarketConfig, ...]
    listen_key_ttl_s: float = Field(default=3600.0, gt=0)
    ping_interval_s: float = Field(default=20.0, gt=0)
    # newClientOrderId uniqueness: "open" = unique among the account's open orders (Binance: "A
    # unique id among open orders"), "ever" = never reusable (-4116 on any reuse).
    client_id_rule: Literal["open", "ever"] = "open"
    # Whether the matching engine re-checks `timestamp` + `recvWindow` when an order reaches it
    # (-5028 ME_RECVWINDOW_REJECT), besides the check on arrival (-1021).
    recv_window_at_engine: bool = True
    # Request weight per source address per window (Binance: 2,400 per minute per IP).
    weight_limit_1m: int = Field(default=2400, gt=0)
    weight_window_s: float = Field(default=60.0, gt=0)
    # Orders per account (Binance: 300 per 10 s and 1,200 per minute).
    order_limit_10s: int = Field(default=300, gt=0)
    order_limit_1m: int = Field(default=1200, gt=0)
    # Ignoring 429s: after this many 429 answers in one window, the next over-limit request bans the
    # address (HTTP 418). Ban lengths: base * growth**(offence - 1), capped (Binance: 2 min to 3 days).
    ban_after_429s: int = Field(default=10, ge=0)
    ban_base_s: float = Field(default=120.0, gt=0)
    ban_growth: float = Field(default=2.0, ge=1)
    ban_max_s: float = Field(default=259_200.0, gt=0)
    # WebSocket connection attempts per source address on the user-stream host per window.
    ws_connect_limit: int = Field(default=300, gt=0)
    ws_connect_window_s: float = Field(default=300.0, gt=0)
    recv_window_max_ms: int = Field(default=60_000, gt=0)
    # How often the fair prices random-walk and resting orders are re-checked; 0 freezes prices
    # (they then move only through POST /_sim/price), which makes tests deterministic.
    tick_interval_s: float = Field(default=0.5, ge=0)
    # How long an `accept_then_timeout` response is held when the client does not hang up first.
    hold_timeout_s: float = Field(default=30.0, gt=0)
    # Funding (Binance "Mark Price" / Bybit "Funding Rate"): at every multiple of the interval since
    # the epoch (00:00, 08:00, 16:00 UTC for the venues' 8 h) each open position receives
    # -position x mark x rate: longs pay when the rate is positive. Tests shorten the interval.
    funding_interval_s: float = Field(default=28_800.0, gt=0)
    funding_rate: Decimal = Field(default=Decimal("0.0001"), ge=Decimal("-0.03"), le=Decimal("0.03"))
    bybit: BybitSettings = Field(default_factory=BybitSettings)

    @model_validator(mode="before")
    @classmethod
    def _legacy_budget(cls, data: Any) -> Any:
        """Before request weights, one per-account `request_budget` per `request_window_s` covered
        every request. A file that still sets it gets that figure as the weight limit and both order
        limits, over any new keys (so a benchmark's "unlimited" budget stays unlimited)."""
        if isinstance(data, dict) and ("request_budget" in data or "request_window_s" in data):
            data = dict(data)
            budget = data.pop("request_budget", None)
            window = data.pop("request_window_s", None)
            if budget is not None:
                for key in ("weight_limit_1m", "order_limit_10s", "order_limit_1m"):
                    data[key] = budget
            if window is not None:
                data["weight_window_s"] = window
        return data

    @model_validator(mode="after")
    def _unique_symbols(self) -> SimConfig:
        seen: set[str] = set()
        for market in self.markets:
            if market.symbol in seen:
                raise ValueError(f"market {market.symbol} is declared twice")
            seen.add(market.symbol)
        return self

    def market(self, symbol: str) -> MarketConfig | None:
        for market in self.markets:
            if market.symbol == symbol:
                return market
        return None


class SimConfigError(ValueError):
    pass


def config_from_dict(data: dict[str, Any], *, source: str = "<dict>") -> SimConfig:
    try:
        return SimConfig.model_validate(data)
    except ValidationError as exc:
        raise SimConfigError(f"invalid sim config in {source}:\n{exc}") from exc


def load_sim_config(path: str | Path | None = None, **overrides: Any) -> SimConfig:
    """The market file at `path` (or the packaged default), with top-level keys overridden."""
    if path is None:
        text = resources.files("bot.sim").joinpath("default.yaml").read_text(encoding="utf-8")
        source = "bot/sim/default.yaml"
    else:
        text = Path(path).read_text(encoding="utf-8")
        source = str(path)
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise SimConfigError(f"invalid sim config in {source}: the top level must be a mapping")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(data, source=source)
