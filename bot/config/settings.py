"""Config models mapped to the settings of the components that use them: the pure core's risk
limits and sizings, built once per follower at start."""

from __future__ import annotations

from bot.config.models import FollowerConfig
from bot.core.risk import RiskLimits
from bot.core.sizing import Sizing, SizingMode


def limits_from(cfg: FollowerConfig) -> RiskLimits:
    r = cfg.risk
    return RiskLimits(
        max_order_notional=r.max_order_notional,
        max_position_notional=r.max_position_notional,
        max_total_exposure=r.max_total_exposure,
        max_leverage=r.max_leverage,
        symbols_allow=frozenset(r.symbols_allow) if r.symbols_allow is not None else None,
        symbols_deny=frozenset(r.symbols_deny),
        slippage_bps=r.slippage_bps,
        portfolio_stop=r.portfolio_stop,
        daily_loss_limit=r.daily_loss_limit,
        max_drawdown=r.max_drawdown,
    )


def sizings_from(cfg: FollowerConfig) -> dict[str, Sizing]:
    return {
        f.lead: Sizing(
            mode=SizingMode(f.sizing.mode),
            multiplier=f.sizing.multiplier,
            notional=f.sizing.notional,
            allocation=f.sizing.allocation,
        )
        for f in cfg.follows
    }
