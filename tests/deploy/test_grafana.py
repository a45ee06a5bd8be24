"""deploy/grafana/copybot.json: valid dashboard JSON whose every query names only metrics that
copybot really exports (bot/live/metrics.py and the request budgets' collector,
bot/live/budget_metrics.py, rendered on /metrics)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bot.live import budget_metrics
from bot.live.metrics import Metrics
from bot.live.venue_runtime import Venue
from bot.venues import VenueMode

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "copybot.json"
METRIC = re.compile(r"\bcopybot_[a-z0-9_]+\b")


def exported_names() -> set[str]:
    """Every sample name /metrics can show: each metric given one labelled child, then rendered."""
    metrics = Metrics()
    for collector in list(metrics.registry._collector_to_names):
        labels = getattr(collector, "_labelnames", ())
        child = collector.labels(*(["x"] * len(labels))) if labels else collector
        if hasattr(child, "observe"):
            child.observe(1)
        elif hasattr(child, "inc"):
            child.inc()
    venue = Venue("local", "binanceusdm", VenueMode.SIM, None, None, {}, 10_000, source_address="127.0.0.2")
    budget_metrics.install(metrics.registry, lambda: {"local": venue})
    text = metrics.render().decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def queries(dashboard: dict[str, Any]) -> list[str]:
    out = []
    for panel in dashboard["panels"]:
        out += [t["expr"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            out.append(variable["query"]["query"])
    return out


def test_every_query_names_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_names()
    assert "copybot_copy_lag_seconds_bucket" in exported  # the probe itself works
    assert "copybot_request_weight_used" in exported
    used = set()
    for expr in queries(dashboard):
        names = set(METRIC.findall(expr))
        assert names, f"a query that names no copybot metric: {expr}"
        assert names <= exported, f"{expr}: unknown {sorted(names - exported)}"
        used |= names
    # Every metric family appears on the dashboard somewhere.
    families = {re.sub(r"_(bucket|count|sum|created|total)$", "", n) for n in exported}
    shown = {re.sub(r"_(bucket|count|sum|created|total)$", "", n) for n in used}
    assert families - shown == set()


def test_dashboard_shape() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "copybot-overview"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
