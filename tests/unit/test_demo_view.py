"""The demo's live view: log lines go above it while it runs, to stderr otherwise."""

from __future__ import annotations

import io

from rich.console import Console
from rich.live import Live

from bot.demo.view import LogRelay


def test_log_lines_go_above_the_live_view_while_it_runs() -> None:
    fallback, screen = io.StringIO(), io.StringIO()
    relay = LogRelay(fallback)
    relay.write("before the view\n")
    live = Live("TABLE", console=Console(file=screen, force_terminal=True, width=80), auto_refresh=False)
    live.start()
    relay.live = live
    relay.write("2026-11-29 [warning] order_error follower=f1\n")
    live.stop()
    relay.live = None
    relay.write("after the view\n")
    assert fallback.getvalue() == "before the view\nafter the view\n"
    printed = screen.getvalue()
    assert "order_error follower=f1" in printed
    assert printed.index("order_error") < printed.rindex("TABLE")  # printed above the redrawn view
