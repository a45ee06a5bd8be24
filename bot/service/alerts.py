"""Alerts: tell a human when copying stops or drifts (a follower hit its stop or was disabled, a
lead stream went stale, reconciliation found drift), through the generic JSON webhook and through
apprise destinations (bot/service/notify.py: grouped, rate-limited, written for a person).

`AlertSink.send()` is called from the engine's hot path, so it never blocks and never raises: it
puts the alert on a bounded queue (dropping the oldest, counted, when the webhook cannot keep up)
and a background task POSTs JSON with retries. Without a URL alerts are only logged. The URL is
never logged: webhook URLs usually carry their token in the path or query.

Kinds the daemon sends: stop_triggered, follower_disabled, kill_switch, kill_switch_released,
state_changed (trading
states, bot/live/trading_states.py), worker_failed (bot/live/supervisor.py), stream_stale,
reconcile_drift. Any other kind is delivered too, so a new one never loses an alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

if TYPE_CHECKING:
    from bot.service.notify import Notifications

log = structlog.get_logger(__name__)

SEVERITIES = frozenset({"info", "warning", "critical"})

# 408 and 429 mean "try later"; any other 4xx means the request itself is wrong and a retry
# would fail the same way.
_RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Alert:
    ts: str
    kind: str
    subject: str
    severity: str
    detail: dict[str, Any]
    host: str

    def body(self) -> bytes:
        payload = {
            "ts": self.ts,
            "kind": self.kind,
            "subject": self.subject,
            "severity": self.severity,
            "detail": self.detail,
            "host": self.host,
        }
        return json.dumps(payload, default=_json_default, separators=(",", ":")).encode()


def _json_default(value: object) -> str:
    # Decimal's str is exact; for anything else a readable string beats losing the alert.
    return str(value)


class _RetryableStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"webhook answered HTTP {status}")
        self.status = status


class _PermanentStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"webhook answered HTTP {status}")
        self.status = status


def _describe(exc: BaseException) -> str:
    # aiohttp's messages can embed the full URL (ClientResponseError does); the type and the
    # status are enough to act on.
    status = getattr(exc, "status", None)
    return type(exc).__name__ if status is None else f"{type(exc).__name__} (HTTP {status})"


def _safe_target(url: str) -> str:
    """scheme://host[:port] only: no user info, path or query, which is where tokens live."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


class AlertSink:
    """Bounded, non-blocking webhook notifier. Call `start()` inside the event loop, `send()` from
    anywhere on that loop, and `await stop()` on shutdown (delivers what is queued, within a bound)."""

    def __init__(
        self,
        url: str | None,
        *,
        queue_size: int = 256,
        attempts: int = 5,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        request_timeout_s: float = 10.0,
        stop_timeout_s: float = 5.0,
        host: str | None = None,
        notifications: Notifications | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"AlertSink: queue_size must be at least 1, got {queue_size}")
        if attempts < 1:
            raise ValueError(f"AlertSink: attempts must be at least 1, got {attempts}")
        self._url = url or None
        self.target = _safe_target(url) if url else None
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self._attempts = attempts
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._request_timeout_s = request_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._host = host or socket.gethostname()
        self.notifications = notifications if notifications is not None and notifications.enabled else None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        # Counters for status and metrics.
        self.queued = 0
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.retries = 0

    @property
    def enabled(self) -> bool:
        return self._url is not None or self.notifications is not None

    def start(self) -> None:
        """Start the delivery tasks (needs a running event loop). Without a URL there is none."""
        if self.notifications is not None:
            self.notifications.start()
        if self._url is None or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._deliver_forever(), name="alert-sink")
        log.info("alerts_webhook_enabled", target=self.target)

    def send(self, kind: str, subject: str, detail: dict[str, Any], severity: str = "warning") -> None:
        """Log the alert and queue it for the webhook. Never blocks, never raises."""
        try:
            self._send(kind, subject, detail, severity)
        except Exception as exc:  # an alert must never take the engine down with it
            log.error("alert_send_failed", kind=kind, subject=subject, error=_describe(exc))

    def _send(self, kind: str, subject: str, detail: dict[str, Any], severity: str) -> None:
        if severity not in SEVERITIES:
            severity = "warning"
        alert = Alert(
            ts=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            kind=kind,
            subject=subject,
            severity=severity,
            detail=dict(detail),
            host=self._host,
        )
        log_method = {"critical": log.error, "warning": log.warning}.get(severity, log.info)
        log_method("alert", alert_kind=kind, subject=subject, severity=severity, detail=alert.detail)
        if self._closed:
            return
        if self.notifications is not None:
            self.notifications.add(alert)
        if self._url is None:
            return
        if self._queue.full():
            # The newest alert says most about the present; the oldest is the one to lose.
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
                self._queue.task_done()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("alerts_dropped", dropped=self.dropped, reason="webhook queue full")
        self._queue.put_nowait(alert)
        self.queued += 1

    async def stop(self) -> None:
        """Deliver what is queued within `stop_timeout_s`, then cancel and close."""
        self._closed = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout=self._stop_timeout_s)
            except TimeoutError:
                log.warning("alerts_undelivered_at_stop", pending=self._queue.qsize())
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.notifications is not None:
            await self.notifications.stop(self._stop_timeout_s)

    async def _deliver_forever(self) -> None:
        while True:
            alert = await self._queue.get()
            try:
                await self._deliver(alert)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed += 1
                log.error(
                    "alert_delivery_failed",
                    alert_kind=alert.kind,
                    subject=alert.subject,
                    target=self.target,
                    error=_describe(exc),
                )
            else:
                self.delivered += 1
            finally:
                self._queue.task_done()

    async def _deliver(self, alert: Alert) -> None:
        url = self._url
        if url is None:
            return
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._request_timeout_s),
                headers={"Content-Type": "application/json", "User-Agent": "copybot-alerts"},
            )
        session, body = self._session, alert.body()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff_initial_s, max=self._backoff_max_s),
            retry=retry_if_exception_type((aiohttp.ClientError, TimeoutError, _RetryableStatus)),
            before_sleep=self._before_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._post_once(session, url, body)

    @staticmethod
    async def _post_once(session: aiohttp.ClientSession, url: str, body: bytes) -> None:
        async with session.post(url, data=body) as response:
            status = response.status
            await response.read()
        if status >= 500 or status in _RETRY_STATUSES:
            raise _RetryableStatus(status)
        if status >= 400:
            raise _PermanentStatus(status)

    def _before_retry(self, state: RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "alert_delivery_retry",
            attempt=state.attempt_number,
            target=self.target,
            error=_describe(exc) if exc is not None else None,
        )
