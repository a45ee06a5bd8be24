"""Alerts written for a person: what happened, to whom, what copybot did, and what to do.

`compose(alerts)` turns a group of alerts of one kind (bot/service/notify.py groups them) into one
title and body for a chat or e-mail destination. The generic JSON webhook keeps the raw alert; this
text is for people. Values come from the engine (ids, symbols, reasons), never from a secret: the
config's secrets are not part of any alert detail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
# Lines of detail in one grouped message; the rest is counted, so a burst stays one short message.
MAX_LINES = 10


class AlertLike(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def detail(self) -> dict[str, Any]: ...
    @property
    def host(self) -> str: ...


def _state_line(a: AlertLike) -> str:
    d = a.detail
    who = "all followers (global)" if a.subject == "*" else f"follower {a.subject}"
    return (
        f"{who}: {str(d.get('from', '?')).upper()} -> {str(d.get('to', '?')).upper()} ({d.get('reason', '')})"
    )


def _drift_line(a: AlertLike) -> str:
    d = a.detail
    parts = [
        f"{x.get('symbol')} off by {x.get('size')} (position {x.get('position')}, target {x.get('target')})"
        for x in d.get("drifts") or []
    ]
    return f"follower {d.get('follower', a.subject)}: " + ("; ".join(parts) or f"{d.get('drifts')} symbol(s)")


def _stale_line(a: AlertLike) -> str:
    error = a.detail.get("error")
    return f"lead {a.subject}: {error}" if error else f"lead {a.subject}"


def _worker_line(a: AlertLike) -> str:
    d = a.detail
    return f"task {a.subject}: {d.get('error') or d.get('reason') or 'failed'}"


def _tpsl_line(a: AlertLike) -> str:
    d = a.detail
    kind = "take-profit" if d.get("kind") == "tp" else "stop-loss"
    where = f"{d.get('symbol', '?')} at {d.get('trigger_price', '?')}"
    return f"follower {a.subject}: {kind} on {where} closed {d.get('qty', '?')}"


def _generic_line(a: AlertLike) -> str:
    detail = ", ".join(f"{k}={v}" for k, v in a.detail.items())
    return f"{a.subject}: {detail}" if detail else a.subject


# kind -> (title, line per alert, what copybot did, what to do)
_KINDS: dict[str, tuple[str, Callable[[AlertLike], str], str, str]] = {
    "stop_triggered": (
        "Stop triggered",
        _state_line,
        "copybot stopped new entries for it; exits still follow the lead.",
        "Check the account. When you want copying back: copybot resume --follower ID.",
    ),
    "follower_disabled": (
        "Follower disabled",
        _state_line,
        "copybot stopped sending orders to it; every other follower keeps copying.",
        "Check its API key and account on the venue, then restart copybot or resume it.",
    ),
    "kill_switch": (
        "Kill switch engaged",
        _state_line,
        "copybot halted every follower: no orders at all until the kill file is removed.",
        "Remove the kill-switch file when it is safe to trade again.",
    ),
    "kill_switch_released": (
        "Kill switch released",
        _state_line,
        "copybot went back to the state from before the kill switch.",
        "Nothing; copying resumes from each follower's target.",
    ),
    "state_changed": (
        "Trading state changed",
        _state_line,
        "copybot applied the new state.",
        "Nothing if you asked for it; otherwise see copybot status.",
    ),
    "tpsl_triggered": (
        "Take-profit / stop-loss triggered",
        _tpsl_line,
        "The venue closed the copied position; copybot does not reopen it and pauses that symbol's copy.",
        "Nothing; the copy resumes when the lead closes or reopens the position.",
    ),
    "reconcile_drift": (
        "Follower positions off target",
        _drift_line,
        "copybot corrected the positions through the normal order path (report mode: only reported).",
        "Nothing if it does not repeat; a repeating drift means orders outside copybot or a venue problem.",
    ),
    "stream_stale": (
        "Lead stream stale",
        _stale_line,
        "copybot reconnects and backfills the fills it missed; nothing is copied while it is down.",
        "Check the venue's status page and the network if it lasts.",
    ),
    "worker_failed": (
        "A copybot task failed",
        _worker_line,
        "copybot restarts the task; a follower whose task keeps failing is disabled.",
        "Look at the daemon's log around this time (journalctl -u copybot).",
    ),
}


def compose(alerts: Sequence[AlertLike], total: int | None = None) -> tuple[str, str]:
    """One (title, body) for a group of alerts of one kind, worst severity first in the title.
    `total` counts the alerts of the group that were not kept (default: len(alerts))."""
    if not alerts:
        raise ValueError("compose: no alerts")
    first = alerts[0]
    title, line, did, todo = _KINDS.get(
        first.kind,
        (first.kind.replace("_", " ").capitalize(), _generic_line, "", "See copybot status and the log."),
    )
    worst = max((a.severity for a in alerts), key=lambda s: SEVERITY_RANK.get(s, 1))
    total = max(total or 0, len(alerts))
    count = f" ({total}x)" if total > 1 else ""
    lines = [line(a) for a in alerts[:MAX_LINES]]
    if total > MAX_LINES:
        lines.append(f"... and {total - MAX_LINES} more of the same kind")
    body = "\n".join(
        [
            *lines,
            "",
            *([f"What copybot did: {did}"] if did else []),
            f"What to do: {todo}",
            f"Host: {first.host}",
        ]
    )
    return f"copybot {worst.upper()}: {title}{count}", body
