"""Take docs/dashboard.png: the demo's layout on the local exchange, its scripted lead trading, and
the dashboard in headless Chromium (the system browser; nothing is downloaded).

    python scripts/dashboard_screenshot.py [--seconds 20] [--out docs/dashboard.png]

Prints the number of server-sent events the page received and their rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.async_api import async_playwright  # noqa: E402

from tests.integration.dashboard_demo import CHROMIUM, CHROMIUM_ARGS, DemoRun  # noqa: E402


async def main(seconds: float, out: Path, width: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with DemoRun(Path(tmp), followers=4) as demo, async_playwright() as p:
            context = await p.chromium.launch_persistent_context(
                str(Path(tmp) / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": width, "height": 900},
            )  # fmt: skip
            page = await context.new_page()
            await page.goto(f"{demo.url}/dashboard")
            await page.wait_for_selector("body[data-conn='live']")
            started, before = time.monotonic(), int(await page.get_attribute("body", "data-seq") or 0)
            await demo.script().run(seconds)
            await demo.wait_idle()
            await asyncio.sleep(5.5)  # one more charts event, with the last points
            elapsed = time.monotonic() - started
            received = int(await page.get_attribute("body", "data-seq") or 0) - before
            out.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(out), full_page=True)
            await context.close()
            print(json.dumps({"screenshot": str(out), "sse_events": received, "seconds": round(elapsed, 1),
                              "events_per_s": round(received / elapsed, 2)}))  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the scripted lead trades")
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard.png"))
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.out, args.width))
