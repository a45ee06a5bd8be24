"""The demo's live terminal view (rich): lead and follower positions, the last copy lag, denials.

While the view runs, log lines go through `LogRelay` and are printed above it by rich, so a warning
never tears the table apart; before and after it they go to stderr as usual."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from rich.console import Group
from rich.live import Live
from rich.table import Table

from bot.core.rounding import shown
from bot.service.status import snapshot

if TYPE_CHECKING:
    from bot.demo.report import Recorder
    from bot.live.engine import Engine


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


class LogRelay:
    """A text stream for configure_logging: to `fallback` normally, above the live view while one
    is shown."""

    def __init__(self, fallback: TextIO | None = None) -> None:
        self.fallback = fallback or sys.stderr
        self.live: Live | None = None

    def write(self, text: str) -> int:
        live = self.live
        if live is not None and live.is_started:
            live.console.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
        else:
            self.fallback.write(text)
        return len(text)

    def flush(self) -> None:
        self.fallback.flush()

    def isatty(self) -> bool:
        return self.fallback.isatty()


class DemoView:
    def __init__(self, engine: Engine, recorder: Recorder, relay: LogRelay | None = None) -> None:
        self.engine = engine
        self.recorder = recorder
        self.relay = relay
        self._task: asyncio.Task[None] | None = None
        self._live: Live | None = None

    def render(self) -> Group:
        status = snapshot(self.engine)
        leads = Table(title="lead", expand=True)
        for column in ("lead", "stream", "fills", "positions"):
            leads.add_column(column)
        for lead_id, lead in status["leads"].items():
            stream = "live" if lead["stream"]["live"] else "down"
            positions = "\n".join(f"{s.split('/')[0]} {q}" for s, q in lead["positions"].items()) or "flat"
            leads.add_row(lead_id, stream, str(lead["fills"]), positions)
        followers = Table(title="followers (position / target)", expand=True)
        for column in ("follower", "state", "equity", "orders", "positions"):
            followers.add_column(column)
        for fid, f in status["followers"].items():
            cells = []
            for symbol, p in f["positions"].items():
                flag = "" if p["match"] else " *"
                cells.append(f"{symbol.split('/')[0]} {p['position']}/{p['target']}{flag}")
            # One symbol per line: at 80 columns a cell wraps between symbols, never inside one.
            positions = "\n".join(cells) or "flat"
            followers.add_row(fid, f["state"], shown(f["equity"]), str(f["orders_sent"]), positions)
        lag = self.engine.last_copy_lag_ms
        total = sum(self.recorder.outcomes.values())
        footer = Table.grid()
        lag_text = f"{lag:.2f} ms" if lag is not None else "-"
        # Inside copybot only; the summary at the end adds the streams' delivery (exchange to exchange).
        footer.add_row(f"last copy lag inside copybot (lead fill received -> order sent): {lag_text}")
        footer.add_row(f"follower orders: {total} ({_counts(self.recorder.outcomes)})")
        footer.add_row(f"denials: {_counts(self.recorder.denials)}")
        footer.add_row(f"clips: {_counts(self.recorder.clips)}")
        return Group(leads, followers, footer)

    async def _refresh(self) -> None:
        assert self._live is not None
        while True:
            self._live.update(self.render())
            await asyncio.sleep(0.5)

    def start(self) -> None:
        self._live = Live(self.render(), refresh_per_second=4, transient=False)
        self._live.start()
        if self.relay is not None:
            self.relay.live = self._live
        self._task = asyncio.create_task(self._refresh(), name="demo-view")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._live is not None:
            with contextlib.suppress(Exception):
                self._live.update(self.render())
            self._live.stop()
        if self.relay is not None:
            self.relay.live = None
