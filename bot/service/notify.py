"""Notifications people read: alerts grouped, rate-limited and sent through apprise (Telegram,
Discord, Slack, e-mail, ntfy and the rest, each by its URL) to each destination at or above its
minimum severity.

`AlertSink.send()` (bot/service/alerts.py) hands every alert to `add()`, which only appends to a
bounded bucket per (destination, kind): it never blocks the engine. A background task sends a bucket
as one message (bot/service/messages.py) when it is due:

- a first alert of a kind waits `gather_s` (2 s) for the rest of its burst, so a burst of a hundred
  is one message;
- after a message of a kind, the next one for that destination waits until `group_window_s` has
  passed, collecting everything meanwhile;
- each destination gets at most `max_per_hour` messages; past that its buckets keep collecting
  (bounded) and go out, merged, when the hour allows.

The destination URL holds its token: it is never logged, nor shown in an error or the status
(`label` is only the scheme); config resolves it as a secret and registers its parts with the log
redactor (bot.config.secrets.register_url_parts).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from bot.core.redaction import redact_text
from bot.service.messages import SEVERITY_RANK, AlertLike, compose

log = structlog.get_logger(__name__)

# Alerts kept per bucket for the message text; more are counted, not kept.
BUCKET_KEEP = 50
_NOTIFY_TYPE = {"info": "info", "warning": "warning", "critical": "failure"}

# (url, title, body, severity) -> delivered?
SendFn = Callable[[str, str, str, str], Awaitable[bool]]


async def apprise_send(url: str, title: str, body: str, severity: str) -> bool:
    """Send through apprise (imported here: it is only needed when a destination is configured)."""
    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        return False
    return bool(await sender.async_notify(title=title, body=body, notify_type=_NOTIFY_TYPE[severity]))


@dataclass
class _Bucket:
    alerts: list[AlertLike] = field(default_factory=list)
    total: int = 0
    first_at: float = 0.0


@dataclass
class Destination:
    url: str = field(repr=False)
    min_severity: str
    sent_at: deque[float] = field(default_factory=deque)
    delivered: int = 0
    failed: int = 0

    @property
    def label(self) -> str:
        """What logs and status may show: the scheme only (the rest can be a token)."""
        return self.url.split("://", 1)[0] + "://" if "://" in self.url else "?"

    def accepts(self, severity: str) -> bool:
        return SEVERITY_RANK.get(severity, 1) >= SEVERITY_RANK[self.min_severity]


class Notifications:
    def __init__(
        self,
        targets: list[tuple[str, str]],
        *,
        gather_s: float = 2.0,
        group_window_s: float = 60.0,
        max_per_hour: int = 30,
        tick_s: float = 0.25,
        send: SendFn = apprise_send,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.destinations = [Destination(url, severity) for url, severity in targets]
        self._gather_s = gather_s
        self._window_s = group_window_s
        self._max_per_hour = max_per_hour
        self._tick_s = tick_s
        self._send = send
        self._clock = clock
        self._buckets: dict[tuple[int, str], _Bucket] = {}
        self._last_sent: dict[tuple[int, str], float] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.destinations)

    def add(self, alert: AlertLike) -> None:
        """Put the alert in the bucket of each destination that wants its severity. Never blocks."""
        now = self._clock()
        for index, dest in enumerate(self.destinations):
            if not dest.accepts(alert.severity):
                continue
            bucket = self._buckets.setdefault((index, alert.kind), _Bucket(first_at=now))
            bucket.total += 1
            if len(bucket.alerts) < BUCKET_KEEP:
                bucket.alerts.append(alert)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="notifications")
            log.info("notifications_enabled", destinations=[d.label for d in self.destinations])

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is pending (rate limits aside: it is the last chance), then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.wait_for(self.flush(force=True), timeout=timeout_s)
        except TimeoutError:
            log.warning("notifications_undelivered_at_stop", pending=len(self._buckets))

    async def _run(self) -> None:
        while True:
            await self.flush()
            await asyncio.sleep(self._tick_s)

    def _due(self, key: tuple[int, str], bucket: _Bucket, now: float) -> bool:
        dest = self.destinations[key[0]]
        while dest.sent_at and now - dest.sent_at[0] >= 3600:
            dest.sent_at.popleft()
        if len(dest.sent_at) >= self._max_per_hour:
            return False
        last = self._last_sent.get(key)
        if last is not None and now - last < self._window_s:
            return now >= last + self._window_s
        return now >= bucket.first_at + self._gather_s

    async def flush(self, *, force: bool = False) -> None:
        """Send every bucket that is due (all of them with `force`)."""
        now = self._clock()
        due = [k for k, b in self._buckets.items() if force or self._due(k, b, now)]
        for key in due:
            bucket = self._buckets.pop(key)
            self._last_sent[key] = now
            title, body = compose(bucket.alerts, total=bucket.total)
            worst = max((a.severity for a in bucket.alerts), key=lambda s: SEVERITY_RANK.get(s, 1))
            await self._deliver(self.destinations[key[0]], title, body, worst)

    async def send_text(self, title: str, body: str, severity: str = "info") -> None:
        """A message that is not an alert (the daily summary): to every destination that accepts
        its severity, at once, counted against the hourly limit."""
        for dest in self.destinations:
            if dest.accepts(severity):
                await self._deliver(dest, title, body, severity)

    async def _deliver(self, dest: Destination, title: str, body: str, severity: str) -> None:
        # An alert's detail can quote a venue's error text, which can quote a key: scrub as logs do.
        title, body = redact_text(title), redact_text(body)
        dest.sent_at.append(self._clock())
        try:
            ok = await self._send(dest.url, title, body, severity)
        except Exception as exc:  # a destination's failure must not stop the others
            ok = False
            log.error("notification_failed", destination=dest.label, error=type(exc).__name__)
        if ok:
            dest.delivered += 1
        else:
            dest.failed += 1
            log.warning("notification_not_delivered", destination=dest.label, title=title)

    def report(self) -> list[dict[str, Any]]:
        return [
            {"destination": d.label, "min_severity": d.min_severity, "delivered": d.delivered,
             "failed": d.failed}
            for d in self.destinations
        ]  # fmt: skip
