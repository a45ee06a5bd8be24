"""A small sd_notify client: tells systemd when copybot is ready, what it is doing, that it is alive
(watchdog) and that it is stopping. No dependency beyond the standard library.

Everything here is a no-op when $NOTIFY_SOCKET is unset (a terminal, a test, a container without
systemd), and nothing raises into the caller: a failing notification must never stop trading. The
first failure is logged as a warning, later ones only at debug level, so a missing socket does not
flood the journal every few seconds.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)

HEALTHY_STATUS = "copying: event loop responsive, lead streams fresh"
UNHEALTHY_STATUS = "degraded: watchdog pings paused (event loop slow, a lead stream stale or a task dead)"
# Used for STATUS= refreshes when systemd did not ask for a watchdog.
_STATUS_ONLY_PERIOD_S = 5.0


def _socket_address(raw: str) -> str | bytes:
    # systemd writes abstract sockets as "@name"; the kernel wants a leading NUL byte.
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout systemd expects (WatchdogSec=) in seconds, or None when there is no
    watchdog for this process. Pings should go out at half this interval."""
    environ = os.environ if env is None else env
    raw_usec = environ.get("WATCHDOG_USEC", "").strip()
    if not raw_usec:
        return None
    try:
        usec = int(raw_usec)
    except ValueError:
        log.warning("sd_notify: ignoring malformed WATCHDOG_USEC", value=raw_usec)
        return None
    if usec <= 0:
        return None
    # WATCHDOG_PID names the process the watchdog is meant for; a child that inherited the
    # environment must not ping on its parent's behalf.
    raw_pid = environ.get("WATCHDOG_PID", "").strip()
    if raw_pid:
        try:
            if int(raw_pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 1_000_000


class Notifier:
    """Sends sd_notify datagrams to $NOTIFY_SOCKET (a path or an abstract `@name`)."""

    def __init__(self, socket_path: str | None = None, *, env: Mapping[str, str] | None = None) -> None:
        if socket_path is None:
            socket_path = (os.environ if env is None else env).get("NOTIFY_SOCKET") or None
        self._address = _socket_address(socket_path) if socket_path else None
        self._sock: socket.socket | None = None
        self._failure_logged = False
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send `KEY=value` lines (keyword names are upper-cased: `notify(ready=1, status="x")`).
        Returns whether the datagram went out; never raises."""
        if self._address is None or not fields:
            return False
        # One field per line: a newline inside a value would forge another field.
        lines = [f"{key.upper()}={str(value).replace(chr(10), ' ')}" for key, value in fields.items()]
        payload = "\n".join(lines).encode()
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # Non-blocking: a full receive queue on systemd's side must not stall the event loop.
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            self.failed += 1
            if not self._failure_logged:
                self._failure_logged = True
                log.warning("sd_notify: send failed; further failures logged at debug", error=str(exc))
            else:
                log.debug("sd_notify: send failed", error=str(exc))
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        if status is None:
            return self.notify(ready=1)
        return self.notify(ready=1, status=status)

    def status(self, text: str) -> bool:
        return self.notify(status=text)

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)

    def stopping(self, status: str | None = None) -> bool:
        if status is None:
            return self.notify(stopping=1)
        return self.notify(stopping=1, status=status)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time during start-up or drain (EXTEND_TIMEOUT_USEC)."""
        return self.notify(extend_timeout_usec=int(seconds * 1_000_000))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class WatchdogPinger:
    """Pings the systemd watchdog from the event loop, but only while the daemon is really working.

    `is_healthy` is the engine's verdict ("event loop responsive and every lead stream fresh").
    While it is false, pings stop, so systemd restarts a process that is alive but no longer
    copying; the STATUS= line says why. The loop itself being late also delays pings, which is the
    point: a blocked event loop is not healthy either.
    """

    def __init__(
        self,
        notifier: Notifier,
        *,
        interval_s: float | None = None,
        env: Mapping[str, str] | None = None,
        healthy_status: str = HEALTHY_STATUS,
        unhealthy_status: str = UNHEALTHY_STATUS,
    ) -> None:
        self._notifier = notifier
        timeout = watchdog_interval_s(env)
        self.watchdog_enabled = interval_s is not None or timeout is not None
        if interval_s is not None:
            self.period_s = interval_s
        elif timeout is not None:
            self.period_s = timeout / 2
        else:
            self.period_s = _STATUS_ONLY_PERIOD_S
        if self.period_s <= 0:
            raise ValueError(f"WatchdogPinger: interval must be positive, got {self.period_s}")
        self._healthy_status = healthy_status
        self._unhealthy_status = unhealthy_status
        self.healthy: bool | None = None
        self.pings = 0
        self._check_error_logged = False
        self._last_status: str | None = None

    def _check(self, is_healthy: Callable[[], bool]) -> bool:
        try:
            return bool(is_healthy())
        except Exception as exc:
            # A broken health check means we cannot vouch for the process: stop pinging.
            if not self._check_error_logged:
                self._check_error_logged = True
                log.exception("watchdog: health check raised; treating as unhealthy", error=str(exc))
            return False

    def tick(self, is_healthy: Callable[[], bool], describe: Callable[[], str] | None = None) -> bool:
        """One round: ping if healthy, report a change of health (or, with `describe`, of its
        description: a failing worker shows in STATUS= while pings go on). Returns the health seen."""
        healthy = self._check(is_healthy)
        if healthy and self.watchdog_enabled and self._notifier.watchdog():
            self.pings += 1
        status = self._healthy_status if healthy else self._unhealthy_status
        if describe is not None:
            try:
                problems = describe()
                status = f"{status}; {problems}" if problems else status
            except Exception:  # the description is a courtesy; the verdict above stands
                log.exception("watchdog: status description raised")
        if healthy != self.healthy or status != self._last_status:
            self._notifier.status(status)
            if self.healthy is not None and healthy != self.healthy:
                log.warning("watchdog: health changed", healthy=healthy, status=status)
            self.healthy = healthy
            self._last_status = status
        return healthy

    async def run(self, is_healthy: Callable[[], bool], describe: Callable[[], str] | None = None) -> None:
        """Run until cancelled. Returns at once when there is no notify socket."""
        if not self._notifier.enabled:
            return
        while True:
            self.tick(is_healthy, describe)
            await asyncio.sleep(self.period_s)
