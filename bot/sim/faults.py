"""Injected REST faults: canned error answers, delays, accepted-but-never-answered orders, and
orders that reach the matching engine late.

Each rule applies to one API key or to all (None), optionally only to paths starting with a prefix
and to one HTTP method, for the next `count` matching requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class HttpFault:
    http_status: int
    code: int | None
    msg: str
    retry_after: int | None
    count: int
    api_key: str | None = None
    path: str | None = None
    method: str | None = None

    def body(self) -> dict[str, Any] | None:
        return None if self.code is None else {"code": self.code, "msg": self.msg}


@dataclass(slots=True)
class DelayFault:
    delay_s: float
    count: int
    api_key: str | None = None
    path: str | None = None
    method: str | None = None


@dataclass(slots=True)
class HoldFault:
    count: int
    api_key: str | None = None


@dataclass(slots=True)
class LateFault:
    delay_s: float
    count: int
    api_key: str | None = None


def _matches(rule: HttpFault | DelayFault, api_key: str | None, path: str, method: str) -> bool:
    return (
        rule.count > 0
        and (rule.api_key is None or rule.api_key == api_key)
        and (rule.path is None or path.startswith(rule.path))
        and (rule.method is None or rule.method == method)
    )


class Faults:
    def __init__(self) -> None:
        self.http: list[HttpFault] = []
        self.delays: list[DelayFault] = []
        self.holds: list[HoldFault] = []
        self.lates: list[LateFault] = []

    @property
    def active(self) -> bool:
        return bool(self.http or self.delays or self.holds or self.lates)

    def clear(self) -> None:
        self.http.clear()
        self.delays.clear()
        self.holds.clear()
        self.lates.clear()

    def take_http(self, api_key: str | None, path: str, method: str) -> HttpFault | None:
        for rule in self.http:
            if _matches(rule, api_key, path, method):
                rule.count -= 1
                if rule.count <= 0:
                    self.http.remove(rule)
                return rule
        return None

    def take_delay(self, api_key: str | None, path: str, method: str) -> float:
        for rule in self.delays:
            if _matches(rule, api_key, path, method):
                rule.count -= 1
                if rule.count <= 0:
                    self.delays.remove(rule)
                return rule.delay_s
        return 0.0

    def take_hold(self, api_key: str | None) -> bool:
        for rule in self.holds:
            if rule.count > 0 and (rule.api_key is None or rule.api_key == api_key):
                rule.count -= 1
                if rule.count <= 0:
                    self.holds.remove(rule)
                return True
        return False

    def take_late(self, api_key: str | None) -> float:
        """Seconds the next order POST of `api_key` is held before the matching engine (0: none)."""
        for rule in self.lates:
            if rule.count > 0 and (rule.api_key is None or rule.api_key == api_key):
                rule.count -= 1
                if rule.count <= 0:
                    self.lates.remove(rule)
                return rule.delay_s
        return 0.0

    def add(self, spec: dict[str, Any]) -> list[str]:
        """Register the REST faults of an admin request; returns what was added."""
        api_key = spec.get("api_key")
        path = spec.get("path")
        method = spec.get("method")
        method = method.upper() if isinstance(method, str) else None
        count = int(spec.get("count", 1))
        added: list[str] = []
        if "http_status" in spec or "code" in spec:
            status = int(spec.get("http_status", 400))
            code = spec.get("code")
            msg = str(spec.get("msg") or _default_msg(status, code))
            retry = spec.get("retry_after")
            self.http.append(
                HttpFault(
                    http_status=status,
                    code=int(code) if code is not None else None,
                    msg=msg,
                    retry_after=int(retry) if retry is not None else None,
                    count=count,
                    api_key=api_key,
                    path=path,
                    method=method,
                )
            )
            added.append("http")
        if "delay_ms" in spec:
            delay = float(spec["delay_ms"]) / 1000
            self.delays.append(DelayFault(delay, count, api_key, path, method))
            added.append("delay")
        if "accept_then_timeout" in spec:
            self.holds.append(HoldFault(int(spec["accept_then_timeout"]), api_key))
            added.append("accept_then_timeout")
        if "late_landing_ms" in spec:
            self.lates.append(LateFault(float(spec["late_landing_ms"]) / 1000, count, api_key))
            added.append("late_landing")
        return added


def _default_msg(status: int, code: Any) -> str:
    if code is not None and int(code) == -1003:
        return "Too many requests; current limit is exceeded. Please use WebSocket Streams for live updates."
    if status >= 500:
        return "Service Unavailable."
    return "Injected fault."
