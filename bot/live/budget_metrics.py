"""The request budget of each venue's source address on /metrics, read from the budgets
(bot.live.budget) at scrape time: one series per venue, labelled with the address the process goes
out from (`venues.<name>.source_address`; "" when the system chooses it), so a cluster's shards,
each scraped as its own target, show each address's weight beside its limit (docs/cluster.md,
"What to monitor")."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from bot.live.venue_runtime import Venue

LABELS = ["venue", "source_address"]


class BudgetCollector(Collector):
    def __init__(self, venues: Callable[[], Mapping[str, Venue]]) -> None:
        self._venues = venues

    def collect(self) -> Iterator[Metric]:
        used = GaugeMetricFamily(
            "copybot_request_weight_used",
            "Request weight used in the venue's current minute by this source address, as far as "
            "known (counted here, and the venue's own count from its used-weight header)",
            labels=LABELS,
        )
        peak = GaugeMetricFamily(
            "copybot_request_weight_peak", "The highest minute of request weight seen", labels=LABELS
        )
        limit = GaugeMetricFamily(
            "copybot_request_weight_limit",
            "Request weight per minute this process allows itself on the address "
            "(venues.<name>.request_budget.weight_limit_1m, else the venue's published limit)",
            labels=LABELS,
        )
        limited = CounterMetricFamily(
            "copybot_request_rate_limited", "429 answers of the venue to this address", labels=LABELS
        )
        banned = CounterMetricFamily(
            "copybot_request_banned", "418 answers (address bans) of the venue to this address", labels=LABELS
        )
        for name, venue in self._venues().items():
            labels = [name, venue.source_address or ""]
            budget = venue.budget.snapshot()  # rolls the minute over first, so `used` is this minute's
            used.add_metric(labels, budget["used_1m"])
            peak.add_metric(labels, budget["peak_1m"])
            if budget["limit_1m"] is not None:
                limit.add_metric(labels, budget["limit_1m"])
            limited.add_metric(labels, budget["rate_limited"])
            banned.add_metric(labels, budget["banned"])
        yield from (used, peak, limit, limited, banned)


_INSTALLED: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()


def install(registry: CollectorRegistry, venues: Callable[[], Mapping[str, Venue]]) -> None:
    """Register the collector on an engine's registry, once (a second app on the same engine, as a
    test may build, would otherwise repeat every series)."""
    if registry not in _INSTALLED:
        registry.register(BudgetCollector(venues))
        _INSTALLED.add(registry)
