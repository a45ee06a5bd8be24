"""Configuration of the local exchange: its markets and the limits of its protocol.

Loaded from YAML (the packaged `default.yaml` when no file is given) into frozen pydantic models, so a
typo in a market file fails at start with the offending key named.
"""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

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
    # Per account: requests answered per window before -1003 / HTTP 429.
    request_budget: int = Field(default=120_000, gt=0)
    request_window_s: float = Field(default=60.0, gt=0)
    recv_window_max_ms: int = Field(default=60_000, gt=0)
    # How often the fair prices random-walk and resting orders are re-checked; 0 freezes prices
    # (they then move only through POST /_sim/price), which makes tests deterministic.
    tick_interval_s: float = Field(default=0.5, ge=0)
    # How long an `accept_then_timeout` response is held when the client does not hang up first.
    hold_timeout_s: float = Field(default=30.0, gt=0)
    bybit: BybitSettings = Field(default_factory=BybitSettings)

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


def load_config(path: str | Path | None = None, **overrides: Any) -> SimConfig:
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
