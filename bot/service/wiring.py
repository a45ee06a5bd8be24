"""Config mapped to the live pipeline's per-follower settings, in one place: the core's sizing and
risk limits (bot/config/settings.py), the order style and the worker's retry policy (the
`supervision` section). The engine gets the result and never reads those config sections itself."""

from __future__ import annotations

from decimal import Decimal

from bot.config.models import AppConfig
from bot.config.settings import limits_from, sizings_from
from bot.core.manual import ManualPolicy
from bot.core.protect import Protection
from bot.live.work import FollowerSettings, RetryPolicy


def follower_settings(cfg: AppConfig) -> dict[str, FollowerSettings]:
    sup = cfg.supervision
    retry = RetryPolicy(
        max_failures=sup.max_failures,
        window_s=sup.window_s,
        backoff_s=sup.retry_backoff_s,
        backoff_max_s=sup.retry_backoff_max_s,
    )
    return {
        f.id: FollowerSettings(
            id=f.id,
            sizings=sizings_from(f),
            limits=limits_from(f),
            retry=retry,
            round_up_min=f.risk.min_notional_policy == "round_up",
            market_orders=f.risk.slippage_bps is None,
            manual_trades=ManualPolicy(f.manual_trades),
            protect=protection(f.risk.take_profit_pct, f.risk.stop_loss_pct),
        )
        for f in cfg.followers
    }


def protection(take_profit_pct: Decimal | None, stop_loss_pct: Decimal | None) -> Protection | None:
    if take_profit_pct is None and stop_loss_pct is None:
        return None
    return Protection(take_profit_pct, stop_loss_pct)
