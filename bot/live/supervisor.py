"""Owner of every long-lived task: lead feeds, follower workers, upkeep, the reconciler.

A task that raises is logged with its traceback, counted (copybot_worker_failures_total), alerted
(`worker_failed`) and restarted after a backoff; a task that ends by itself is a bug too and is
restarted the same way. A follower's worker also reports each failed batch here (it catches the
exception itself so the rest of its queue goes on: bot/live/follower.py). `/readyz` and the
systemd watchdog read `dead()` and `failing()`. See docs/architecture.md, "Supervision and trading
state".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from bot.core.errors import short
from bot.live.metrics import Metrics

log = structlog.get_logger("copybot.supervisor")

Alert = Callable[[str, str, dict[str, Any], str], None]  # kind, subject, detail, severity


@dataclass
class WorkerHealth:
    name: str
    running: bool = False
    failures: int = 0  # since start
    consecutive: int = 0  # failures since the last success
    restarts: int = 0
    last_error: str | None = None
    last_failure_ts: float | None = None

    def failing(self, window_s: float) -> bool:
        """Failed and neither succeeded since nor been quiet for `window_s` (a restarted task that
        runs on without failing again is healthy once the window has passed)."""
        recent = self.last_failure_ts is not None and time.time() - self.last_failure_ts < window_s
        return self.consecutive > 0 and recent

    def as_dict(self, window_s: float) -> dict[str, Any]:
        return {
            "running": self.running,
            "failing": self.failing(window_s),
            "failures": self.failures,
            "consecutive_failures": self.consecutive,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_failure_ts": self.last_failure_ts,
        }


class Supervisor:
    def __init__(
        self,
        metrics: Metrics,
        alert: Alert,
        *,
        restart_backoff_s: float = 0.5,
        restart_backoff_max_s: float = 30.0,
        failing_window_s: float = 60.0,
    ) -> None:
        self.metrics = metrics
        self.alert = alert
        self.restart_backoff_s = restart_backoff_s
        self.restart_backoff_max_s = restart_backoff_max_s
        self.failing_window_s = failing_window_s
        self.workers: dict[str, WorkerHealth] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.stopping = False
        self._stopped: set[str] = set()  # cancelled on purpose: not dead

    def spawn(
        self, name: str, run: Callable[[], Awaitable[None]], *, restart: bool = True
    ) -> asyncio.Task[None]:
        """Start `run()` as the supervised task `name` (names are unique: "follower:f1", "feed:alice")."""
        if name in self._tasks and not self._tasks[name].done():
            raise ValueError(f"supervisor: a task named {name!r} is already running")
        health = self.workers.setdefault(name, WorkerHealth(name))
        self._stopped.discard(name)
        task = asyncio.create_task(self._guard(name, run, restart, health), name=name)
        self._tasks[name] = task
        return task

    async def _guard(
        self, name: str, run: Callable[[], Awaitable[None]], restart: bool, health: WorkerHealth
    ) -> None:
        delay = self.restart_backoff_s
        while True:
            health.running = True
            started = time.monotonic()
            try:
                await run()
                error: BaseException = RuntimeError(f"{name} returned; a long-lived task must not end")
            except asyncio.CancelledError:
                health.running = False
                raise
            except Exception as exc:
                error = exc
            health.running = False
            if self.stopping:
                return
            self.failed(name, error)
            if not restart:
                return
            if time.monotonic() - started > self.restart_backoff_max_s:
                delay = self.restart_backoff_s  # it ran for a while: start the backoff afresh
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.restart_backoff_max_s)
            health.restarts += 1
            self.metrics.worker_restarts.labels(name).inc()
            log.warning("worker_restarted", worker=name, restarts=health.restarts)

    def failed(self, name: str, exc: BaseException, **context: Any) -> None:
        """Record one failure of worker `name`: traceback in the log, metric, alert, health."""
        health = self.workers.setdefault(name, WorkerHealth(name, running=True))
        health.failures += 1
        health.consecutive += 1
        health.last_error = short(exc)
        health.last_failure_ts = time.time()
        self.metrics.worker_failures.labels(name).inc()
        log.error("worker_failed", worker=name, error=health.last_error, failures=health.failures,
                  exc_info=exc, **context)  # fmt: skip
        detail = {"error": health.last_error, "consecutive": health.consecutive, **context}
        self.alert("worker_failed", name, detail, "critical")

    def succeeded(self, name: str) -> None:
        """Worker `name` did a unit of work without failing: it is no longer failing."""
        health = self.workers.get(name)
        if health is not None and health.consecutive:
            log.info("worker_recovered", worker=name, after_failures=health.consecutive)
            health.consecutive = 0

    def dead(self) -> list[str]:
        """Supervised tasks that ended for good (not by stop())."""
        if self.stopping:
            return []
        return sorted(name for name, task in self._tasks.items() if task.done() and name not in self._stopped)

    def failing(self) -> list[str]:
        return sorted(name for name, h in self.workers.items() if h.failing(self.failing_window_s))

    def report(self) -> dict[str, dict[str, Any]]:
        return {name: self.workers[name].as_dict(self.failing_window_s) for name in sorted(self.workers)}

    def task(self, name: str) -> asyncio.Task[None] | None:
        return self._tasks.get(name)

    async def retire(self, name: str) -> None:
        """Stop task `name` for good and forget it (a follower that left): neither dead nor listed."""
        await self.stop([name])
        self._tasks.pop(name, None)
        self.workers.pop(name, None)
        self._stopped.discard(name)

    async def stop(self, names: list[str] | None = None) -> None:
        """Cancel the named tasks (all when None) and wait for them."""
        if names is None:
            self.stopping = True
        chosen = [t for n, t in self._tasks.items() if names is None or n in names]
        self._stopped.update(n for n in self._tasks if names is None or n in names)
        for task in chosen:
            task.cancel()
        await asyncio.gather(*chosen, return_exceptions=True)
