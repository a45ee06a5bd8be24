"""The dashboard end to end in headless Chromium (Debian's `chromium`, driven by playwright with the
system browser; nothing is downloaded), against the demo's layout on the local exchange with the
real ccxt clients: the page shows what /status says, a lead fill appears within a second, a halt
clicked on the page halts the follower, and the page reconnects by itself across a daemon restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dashboard_demo import CHROMIUM, CHROMIUM_ARGS, DemoRun

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no browser: {CHROMIUM} is missing "
                       "(apt-get install chromium; .ci/run installs it)"),
]  # fmt: skip

BTC = "BTC/USDT:USDT"
PROBE = '<img src=x onerror="window.pwned = 1">'


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[DemoRun]:
    async with DemoRun(tmp_path) as run:
        yield run


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Any]:
    playwright = pytest.importorskip("playwright.async_api")
    async with playwright.async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.errors = errors
            yield page
        finally:
            await context.close()


async def _text(page: Any, selector: str) -> str:
    return str(await page.locator(selector).first.text_content(timeout=5000)).strip()


async def _attr(page: Any, selector: str, name: str) -> str:
    return str(await page.locator(selector).first.get_attribute(name, timeout=5000))


async def _last_trade_id(demo: DemoRun, order: dict[str, Any]) -> str:
    """The lead's last fill of `order`, as the exchange numbers it (the timeline's trade id)."""
    trades = await demo.lead.fetch_my_trades(BTC)
    return str([t["id"] for t in trades if t["order"] == order["id"]][-1])


def _money(value: str) -> str:
    return f"{Decimal(value).quantize(Decimal('0.01')):,}"


async def test_page_shows_status_live_fills_and_halts_a_follower(demo: DemoRun, page: Any) -> None:
    await demo.trade(BTC, "buy", "0.2")
    await demo.wait_idle()
    # Text from outside (a venue's error, an id) that looks like markup must stay text.
    assert demo.daemon is not None
    assert demo.daemon.engine is not None
    demo.daemon.engine.alert("probe", PROBE, {"error": "<script>window.pwned = 2</script>"})
    await page.goto(f"{demo.url}/dashboard")
    await page.wait_for_selector("body[data-conn='live']", timeout=10_000)
    await page.wait_for_selector("#followers tr[data-follower='f1']", timeout=5000)

    # Its numbers are /status's (the page and the API read the same moment: the lead is idle).
    status = await demo.status()
    for fid, f in status["followers"].items():
        row = f"#followers tr[data-follower='{fid}']"
        assert await _attr(page, f"{row} [data-field='equity']", "data-value") == f["equity"]
        assert await _text(page, f"{row} [data-field='equity']") == _money(f["equity"])
        assert await _text(page, f"{row} [data-field='state']") == f["state"]
        assert await _text(page, f"{row} [data-field='orders_sent']") == str(f["orders_sent"])
        for symbol, p in f["positions"].items():
            cells = f"#followers tr[data-follower='{fid}'][data-symbol='{symbol}']"
            assert await _text(page, f"{cells} [data-field='position']") == p["position"]
            assert await _text(page, f"{cells} [data-field='target']") == p["target"]
        # its results of the copy with this lead (docs/pnl.md), as /status has them
        for span, totals in f["pnl"]["leads"]["lead"]["windows"].items():
            cells = f"#followers table.results tr[data-follower='{fid}'][data-window='{span}']"
            for field in ("realized", "fees", "funding", "slippage", "net"):
                assert await _attr(page, f"{cells} [data-field='{field}']", "data-value") == totals[field]
            assert await _text(page, f"{cells} [data-field='fills']") == str(totals["fills"]) == "1"
    assert await _text(page, "#global-state") == status["state"].upper()
    await page.wait_for_selector("#alerts li", timeout=5000)
    assert PROBE in await _text(page, "#alerts")
    assert await page.locator("#alerts img, #alerts script").count() == 0
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("#timeline li").count() == 1
    assert await page.locator("#leads tr[data-lead='lead']").count() == 1
    # The flows panel: every follower joined at start (a flow each), nobody left.
    flows_row = "#flows tr[data-lead='lead']"
    assert await _text(page, f"{flows_row} [data-field='joined']") == str(len(status["followers"]))
    assert await _text(page, f"{flows_row} [data-field='left']") == "0"
    assert await _text(page, f"{flows_row} [data-field='following']") == str(len(status["followers"]))
    assert Decimal(await _attr(page, f"{flows_row} [data-field='net_flows']", "data-value")) > 0
    joins = await page.locator("#flow-events li[data-kind='join']").evaluate_all(
        "items => items.map(i => i.dataset.follower)"
    )
    assert sorted(joins) == sorted(status["followers"])

    # A live fill: the lead sells, the timeline shows it with every follower's outcome within 1 s.
    order = await demo.trade(BTC, "sell", "0.1")
    started = time.monotonic()
    trade_id = await _last_trade_id(demo, order)
    await page.wait_for_selector(f"#timeline li[data-trade='{trade_id}'] .chip[data-follower='f1']",
                                 timeout=1000)  # fmt: skip
    shown_after_s = time.monotonic() - started
    print(json.dumps({"lead_order_to_page_s": round(shown_after_s, 3)}))
    assert shown_after_s < 1.0
    outcomes = await page.locator(f"#timeline li[data-trade='{trade_id}'] .chip").evaluate_all(
        "chips => chips.map(c => [c.dataset.follower, c.dataset.outcome])"
    )
    assert {f for f, _ in outcomes} == set(status["followers"])

    # Halt from the page: without a token the buttons are off; with it the follower halts.
    halt_f2 = page.locator("#followers tr[data-follower='f2'] button[data-action='halt']")
    assert await halt_f2.is_disabled()
    await page.fill("#token", demo.token)
    await page.click("#token-use")
    await halt_f2.click()
    await page.wait_for_selector("#followers tr[data-follower='f2'] .state-halted", timeout=3000)
    status = await demo.status()
    assert status["followers"]["f2"]["state"] == "HALTED"
    assert status["followers"]["f2"]["reason"] == "operator: dashboard"
    assert status["followers"]["f1"]["state"] == "ACTIVE"
    await page.click("#followers tr[data-follower='f2'] button[data-action='resume']")
    await page.wait_for_selector("#followers tr[data-follower='f2'] .state-active", timeout=3000)
    # The global buttons act on the process as a whole.
    await page.click("header button[data-action='reduce-only']")
    await page.wait_for_selector("#global-state.state-reduce_only", timeout=3000)
    assert (await demo.status())["state"] == "REDUCE_ONLY"
    await page.click("header button[data-action='resume']")
    await page.wait_for_selector("#global-state.state-active", timeout=3000)
    assert (await demo.status())["state"] == "ACTIVE"
    # The token was typed into the page, never put in a URL, and nothing else was refused.
    assert demo.token not in page.url
    assert await page.evaluate("sessionStorage.getItem('copybot.token')") == demo.token
    assert page.errors == []


async def test_page_reconnects_and_resyncs_across_a_daemon_restart(demo: DemoRun, page: Any) -> None:
    await page.goto(f"{demo.url}/dashboard")
    await page.wait_for_selector("body[data-conn='live']", timeout=10_000)
    await demo.stop_daemon()
    await page.wait_for_selector("body[data-conn='reconnecting']", timeout=5000)
    # While it was down the lead traded: the restarted daemon backfills, the page must show it.
    order = await demo.trade(BTC, "buy", "0.3")
    await demo.start_daemon()
    await demo.wait_idle()
    await page.wait_for_selector("body[data-conn='live']", timeout=10_000)
    trade_id = await _last_trade_id(demo, order)
    await page.wait_for_selector(f"#timeline li[data-trade='{trade_id}']", timeout=5000)
    status = await demo.status()
    for fid, f in status["followers"].items():
        position = f["positions"][BTC]["position"]
        cell = f"#followers tr[data-follower='{fid}'][data-symbol='{BTC}'] [data-field='position']"
        await page.wait_for_function(
            "([sel, want]) => document.querySelector(sel)?.textContent === want", arg=[cell, position],
            timeout=5000,
        )  # fmt: skip
    assert int(await _attr(page, "body", "data-reconnects")) >= 1
    assert page.errors == [] or all("dashboard/events" in e or "ERR_" in e for e in page.errors)


async def test_event_rate_stays_a_few_per_second_under_the_demo(demo: DemoRun, page: Any) -> None:
    """The scripted lead of `copybot demo` trades for 6 s; the page counts the events it gets."""
    await page.goto(f"{demo.url}/dashboard")
    await page.wait_for_selector("body[data-conn='live']", timeout=10_000)
    before = int(await _attr(page, "body", "data-seq"))
    started = time.monotonic()
    await demo.script().run(6)
    await demo.wait_idle()
    await asyncio.sleep(0.5)
    elapsed = time.monotonic() - started
    received = int(await _attr(page, "body", "data-seq")) - before
    rate = received / elapsed
    print(json.dumps({"sse_events": received, "seconds": round(elapsed, 2), "per_s": round(rate, 2)}))
    assert received >= 1
    assert rate <= 5.0  # state at most every 0.25 s, charts every 5 s
    assert await page.locator("#timeline li").count() > 3


async def test_beyond_loopback_the_page_asks_for_the_token_before_showing_data(
    tmp_path: Path, page: Any
) -> None:
    async with DemoRun(tmp_path, host="0.0.0.0") as demo:
        await page.goto(f"{demo.url}/dashboard")
        await page.wait_for_selector("body[data-conn='token needed']", timeout=10_000)
        assert await page.locator("#followers tr[data-follower]").count() == 0
        await page.fill("#token", demo.token)
        await page.click("#token-use")
        await page.wait_for_selector("body[data-conn='live']", timeout=5000)
        await page.wait_for_selector("#followers tr[data-follower='f1']", timeout=5000)
        assert demo.token not in page.url
