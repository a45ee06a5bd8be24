"""`copybot status --follower ID`: one follower's results of the copy as a table that fits 80
columns (the figures of /status -> followers -> <id> -> pnl; docs/pnl.md)."""

from __future__ import annotations

from typing import Any

_HEAD = (f"{'lead':<10} {'span':<4} {'realized':>11} {'fees':>10} {'funding':>10} {'slippage':>10} "
         f"{'net':>11} {'fills':>5}")  # fmt: skip


def _cell(value: Any, width: int) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "~"


def _row(lead: str, span: str, t: dict[str, Any]) -> str:
    return (f"{_cell(lead, 10):<10} {span:<4} {_cell(t['realized'], 11):>11} {_cell(t['fees'], 10):>10} "
            f"{_cell(t['funding'], 10):>10} {_cell(t['slippage'], 10):>10} {_cell(t['net'], 11):>11} "
            f"{_cell(t['fills'], 5):>5}")  # fmt: skip


def pnl_lines(follower_id: str, follower: dict[str, Any]) -> list[str]:
    pnl = follower.get("pnl") or {}
    lines = [
        f"follower {follower_id}: {str(follower.get('state')).upper()}, equity {follower.get('equity')}",
        f"results of the copy ({pnl.get('method', 'average cost')}): fees paid, funding received,",
        "slippage = cost against the lead's prices (already inside realized PnL),",
        "net = realized - fees + funding",
        "",
        _HEAD,
        "-" * len(_HEAD),
    ]
    leads = pnl.get("leads") or {}
    for lead, per in leads.items():
        for span, totals in per["windows"].items():
            lines.append(_row(lead, span, totals))
    if len(leads) > 1:
        for span, totals in (pnl.get("windows") or {}).items():
            lines.append(_row("(all)", span, totals))
    if not leads:
        lines.append("no copied fills yet")
    lines.append("")
    lines.append(f"unrealized now: {pnl.get('unrealized', '0')}")
    lines += [f"  {_cell(lead, 30)}: {per['unrealized']}" for lead, per in leads.items()]
    reads = pnl.get("income_log") or {}
    error = f", last error: {reads['last_error']}" if reads.get("last_error") else ""
    lines.append(f"fees and funding from the account's income log: {reads.get('reads', 0)} reads{error}")
    return lines
