"""Prometheus metrics of one engine (its own registry, so tests can run several engines). The live
pipeline owns them; bot/service only renders them on /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BPS_BUCKETS = (-50, -10, -5, -1, 0, 1, 2, 5, 10, 20, 50, 100, 250, 500)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.copy_lag = Histogram(
            "copybot_copy_lag_seconds",
            "From the lead fill reaching the process to the follower order leaving it (stage=send) "
            "or being acknowledged (stage=ack); stage=venue: from the lead fill's time on the lead "
            "venue's clock to the follower order's time on the follower venue's clock, both turned "
            "into local time by each venue's measured clock offset",
            ["stage", "lead_venue", "follower_venue"],
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.lead_fills = Counter("copybot_lead_fills_total", "Lead fills accepted", ["lead"], registry=r)
        self.duplicate_fills = Counter(
            "copybot_lead_fill_duplicates_total", "Lead fills seen again and dropped", ["lead"], registry=r
        )
        self.orders = Counter("copybot_orders_total", "Follower orders by outcome", ["outcome"], registry=r)
        self.denials = Counter(
            "copybot_denials_total", "Intents denied or clipped by the risk gate", ["reason"], registry=r
        )
        self.reconnects = Counter(
            "copybot_stream_reconnects_total", "Lead stream sessions ended", ["lead"], registry=r
        )
        self.stream_fresh = Gauge(
            "copybot_stream_age_seconds",
            "Seconds since the lead stream last showed life",
            ["lead"],
            registry=r,
        )
        self.mark_updates = Counter(
            "copybot_mark_updates_total", "Mark price changes received from the venue's public stream",
            ["venue"], registry=r,
        )  # fmt: skip
        self.mark_age = Gauge(
            "copybot_mark_age_seconds", "Seconds since the venue's mark feed last delivered an update",
            ["venue"], registry=r,
        )  # fmt: skip
        self.mark_reconnects = Counter(
            "copybot_mark_feed_reconnects_total", "Mark feed sessions that ended on an error",
            ["venue"], registry=r,
        )  # fmt: skip
        self.aum = Gauge("copybot_aum", "Follower capital allocated to the lead", ["lead"], registry=r)
        self.slippage = Histogram(
            "copybot_realized_slippage_bps",
            "Follower fill price against the lead fill price, worse positive",
            ["lead"],
            buckets=_BPS_BUCKETS,
            registry=r,
        )
        self.follower_state = Gauge(
            "copybot_follower_state",
            "1 for the follower's current trading state",
            ["follower", "state"],
            registry=r,
        )
        self.drift = Counter(
            "copybot_reconcile_drift_total", "Follower positions found off target", ["follower"], registry=r
        )

        self.state_changes = Counter(
            "copybot_state_changes_total",
            "Trading-state changes, by subject (a follower or * for global) and code",
            ["subject", "state", "code"],
            registry=r,
        )
        self.worker_failures = Counter(
            "copybot_worker_failures_total",
            "Unexpected exceptions in a supervised task (a follower's batch, a feed, upkeep, ...)",
            ["worker"],
            registry=r,
        )
        self.worker_restarts = Counter(
            "copybot_worker_restarts_total",
            "Supervised tasks restarted after they ended",
            ["worker"],
            registry=r,
        )
        # Each follower's results per lead followed, all time (bot.live.pnl; windows in /status).
        pair = ["follower", "lead"]
        self.pnl_realized = Gauge("copybot_follower_pnl_realized", "Realized PnL of the copy (average cost)",
                                  pair, registry=r)  # fmt: skip
        self.pnl_unrealized = Gauge("copybot_follower_pnl_unrealized", "Unrealized PnL of the open copies",
                                    pair, registry=r)  # fmt: skip
        self.pnl_fees = Gauge("copybot_follower_fees_paid", "Trading fees paid by the copy", pair, registry=r)
        self.pnl_funding = Gauge("copybot_follower_funding", "Funding received by the copy (negative: paid)",
                                 pair, registry=r)  # fmt: skip
        self.pnl_slippage = Gauge("copybot_follower_slippage_cost",
                                  "Cost of filling worse than the lead, in the settle currency", pair,
                                  registry=r)  # fmt: skip

    def render(self) -> bytes:
        return generate_latest(self.registry)
