"""The dashboard's routes on a running daemon (no browser: tests/integration/test_dashboard_browser.py
drives the page): strict headers, bad input refused, the document equal to /status with each
follower's outcome per lead fill, the token beyond loopback, and the event stream."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp

from bot.service.dashboard.routes import CSP
from tests.integration.harness import BTC, ETH, Harness, follower

VOLATILE = ("uptime_s",)


def _steady(status: dict[str, Any]) -> dict[str, Any]:
    """/status without what moves by itself between two reads."""
    out = {k: v for k, v in status.items() if k not in VOLATILE}
    out["leads"] = {k: {**v, "stream": {**v["stream"], "age_s": None}} for k, v in status["leads"].items()}
    out["marks"] = {k: {**v, "age_s": None} for k, v in status["marks"].items()}
    # the age of each follower's last account read grows by itself (0.1 s steps)
    out["followers"] = {k: {**v, "equity_read_age_s": None} for k, v in status["followers"].items()}
    return out


async def _get(h: Harness, path: str, **kw: Any) -> tuple[int, dict[str, str], str]:
    assert h.http is not None
    assert h.daemon is not None
    url = f"http://127.0.0.1:{h.daemon.bound_api_port}{path}"
    async with h.http.get(url, allow_redirects=False, **kw) as resp:
        return resp.status, dict(resp.headers), await resp.text()


async def _events(resp: aiohttp.ClientResponse) -> Any:
    """(event, data) pairs of a server-sent event stream."""
    event = ""
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, json.loads(line[6:])


async def test_page_is_served_with_a_strict_policy_and_bad_input_is_refused(harness: Harness) -> None:
    h = harness
    h.build_config([follower("f1", {"mode": "equity_ratio"})])
    await h.start_daemon()
    status, headers, html = await _get(h, "/dashboard")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Content-Security-Policy"] == CSP
    assert "script-src 'self';" in CSP
    assert "unsafe-inline" not in CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    # No inline script or style: every script is a file, nothing the policy would have to allow.
    assert re.findall(r"<script(?![^>]*\ssrc=)", html) == []
    assert " style=" not in html
    assert re.findall(r"\son[a-z]+=", html) == []
    for name, kind in (("dashboard.js", "text/javascript"), ("charts.js", "text/javascript"),
                       ("dashboard.css", "text/css"), ("icon.svg", "image/svg+xml")):  # fmt: skip
        status, headers, body = await _get(h, f"/dashboard/static/{name}")
        assert (status, headers["Content-Type"].split(";")[0]) == (200, kind)
        assert headers["X-Content-Type-Options"] == "nosniff"
        # Data goes in as text: nothing in the page's code parses a string as HTML.
        assert re.findall(r"\.(?:inner|outer)HTML\s*=|insertAdjacentHTML|document\.write|eval\(", body) == []
    assert (await _get(h, "/dashboard/static/app.py"))[0] == 404
    assert (await _get(h, "/dashboard/static/..%2F..%2Fapi.py"))[0] == 404
    for path in ("/dashboard/state?follower=f1", "/dashboard/events?token=x", "/dashboard?x=1"):
        status, _, body = await _get(h, path)
        assert status == 400, path
        assert "unknown query field" in json.loads(body)["error"]
    status, headers, _ = await _get(h, "/")
    assert (status, headers["Location"]) == (302, "/dashboard")
    assert (await _get(h, "/status"))[1]["X-Content-Type-Options"] == "nosniff"


async def test_document_is_status_with_every_follower_outcome_per_lead_fill(harness: Harness) -> None:
    h = harness
    h.build_config([
        follower("f1", {"mode": "equity_ratio"}),
        follower("f2", {"mode": "equity_ratio"}, max_position_notional=3000),
        follower("f3", {"mode": "equity_ratio"}, symbols_deny=[ETH]),
    ])  # fmt: skip
    await h.start_daemon()
    await h.trade(BTC, "buy", "0.5")
    await h.trade(ETH, "buy", "2")
    await h.settle(2)
    await h.engine.journal.aflush()
    status, _, body = await _get(h, "/dashboard/state")
    assert status == 200
    doc = json.loads(body)
    _, _, api = await _get(h, "/status")
    assert _steady(doc["status"]) == _steady(json.loads(api))
    eth, btc = doc["timeline"]  # newest first
    assert (btc["symbol"], eth["symbol"]) == (BTC, ETH)
    outcomes = {f["follower"]: f for f in btc["followers"]}
    assert outcomes["f1"]["outcome"] == "filled"
    assert outcomes["f2"]["outcome"] == "clipped"
    assert "max_position_notional" in outcomes["f2"]["why"]
    denied = {f["follower"]: f for f in eth["followers"]}["f3"]
    assert denied["outcome"] == "denied"
    assert "symbols_deny" in denied["why"]
    (lead,) = doc["leads"]
    assert lead["lead"] == "lead"
    assert set(lead["allocations"]) == {"f1", "f2", "f3"}
    assert doc["followers"]["f1"]["last_lag_ms"] is not None
    assert doc["followers"]["f1"]["slippage_bps"]["count"] == 2
    assert len(doc["charts"]["copy_lag"]) >= 5
    # No key or secret of any account reaches the page.
    for key, secret in h.keys.values():
        assert key not in body
        assert secret not in body


async def test_beyond_loopback_every_route_with_data_needs_the_token(harness: Harness) -> None:
    h = harness
    h.env["DASH_TOKEN"] = token = "t0k3n-" + "x" * 30
    h.build_config([follower("f1", {"mode": "equity_ratio"})],
                   api={"host": "0.0.0.0", "token": {"env": "DASH_TOKEN"}})  # fmt: skip
    await h.start_daemon()
    assert (await _get(h, "/dashboard"))[0] == 200  # the page carries no data: it asks for the token
    assert (await _get(h, "/dashboard/static/dashboard.js"))[0] == 200
    # Every route with data, reads included: balances and positions are private beyond loopback.
    private = ("/dashboard/state", "/dashboard/events", "/status", "/metrics", "/aum", "/healthz",
               "/readyz", "/followers/changes")  # fmt: skip
    for path in private:
        assert (await _get(h, path))[0] == 401, path
        assert (await _get(h, path, headers={"Authorization": "Bearer wrong"}))[0] == 401, path
    for path in ("/status", "/metrics", "/aum"):
        assert (await _get(h, path, headers={"Authorization": f"Bearer {token}"}))[0] == 200, path
    status, _, body = await _get(h, "/dashboard/state", headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    assert token not in body
    assert json.loads(body)["reads_need_token"] is True


async def test_stream_shows_a_fill_within_a_second_and_ends_when_the_daemon_stops(harness: Harness) -> None:
    h = harness
    h.build_config([follower("f1", {"mode": "equity_ratio"})])
    await h.start_daemon()
    assert h.http is not None
    assert h.daemon is not None
    url = f"http://127.0.0.1:{h.daemon.bound_api_port}/dashboard/events"
    async with h.http.get(url) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        stream = _events(resp)
        event, first = await anext(stream)
        assert (event, first["timeline"]) == ("state", [])
        started = time.monotonic()
        await h.trade(BTC, "buy", "0.2")
        async with asyncio.timeout(1.0):
            async for event, data in stream:
                if event == "state" and data["timeline"] and data["timeline"][0]["followers"]:
                    break
        assert time.monotonic() - started < 1.0
        assert data["timeline"][0]["followers"][0]["outcome"] in ("pending", "filled")
        # A stop ends every open stream at once instead of waiting for the server's shutdown timeout.
        stopping = time.monotonic()
        await h.stop_daemon()
        assert time.monotonic() - stopping < 5.0
