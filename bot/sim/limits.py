"""Binance's rate limits: request weight per source address, new orders per account, IP bans for
ignoring 429s, and websocket connection attempts per source address.

Windows are fixed and aligned to the wall clock, as Binance counts them ("a request at 00:01:23
counts towards the 00:01:00 minute"). Every check is a dict lookup and a few integer operations, so
it stays on the request path.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bot.sim.accounts import SimError
from bot.sim.config import SimConfig

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
ORDERS_10S_HEADER = "X-MBX-ORDER-COUNT-10S"
ORDERS_1M_HEADER = "X-MBX-ORDER-COUNT-1M"


@dataclass(slots=True)
class AddressState:
    window: int = -1
    used: int = 0  # weight used in `window`
    rejected: int = 0  # 429 answers in `window` since the last ban
    banned_until: float = 0.0  # time.time()
    bans: int = 0  # offences so far; each ban is longer


@dataclass(slots=True)
class OrderState:
    window_10s: int = -1
    count_10s: int = 0
    window_1m: int = -1
    count_1m: int = 0


@dataclass(slots=True)
class Limits:
    config: SimConfig
    addresses: dict[str, AddressState] = field(default_factory=dict)
    orders: dict[str, OrderState] = field(default_factory=dict)
    ws_attempts: dict[str, deque[float]] = field(default_factory=dict)

    # -- request weight per source address --------------------------------------------------------

    def charge(self, address: str, weight: int) -> int:
        """Add `weight` to the address's window; the weight used so far, or SimError 429 / 418."""
        cfg = self.config
        now = time.time()
        state = self.addresses.get(address)
        if state is None:
            state = self.addresses[address] = AddressState()
        if state.banned_until > now:
            raise self._banned(address, state, now)
        window = int(now // cfg.weight_window_s)
        if state.window != window:
            state.window, state.used, state.rejected = window, 0, 0
        state.used += weight
        if state.used <= cfg.weight_limit_1m:
            return state.used
        if state.rejected >= cfg.ban_after_429s:
            state.bans += 1
            length = min(cfg.ban_base_s * cfg.ban_growth ** (state.bans - 1), cfg.ban_max_s)
            state.banned_until = now + length
            state.rejected = 0
            raise self._banned(address, state, now)
        state.rejected += 1
        retry = max(1, math.ceil((window + 1) * cfg.weight_window_s - now))
        raise SimError(
            -1003,
            f"Too many requests; current limit of IP({address}) is {cfg.weight_limit_1m} requests per "
            "minute. Please use the websocket for live updates to avoid polling the API.",
            429,
            headers={"Retry-After": str(retry), WEIGHT_HEADER: str(state.used)},
        )

    def _banned(self, address: str, state: AddressState, now: float) -> SimError:
        until_ms = int(state.banned_until * 1000)
        return SimError(
            -1003,
            f"Way too many requests; IP({address}) banned until {until_ms}. Please use the websocket "
            "for live updates to avoid bans.",
            418,
            headers={
                "Retry-After": str(max(1, math.ceil(state.banned_until - now))),
                WEIGHT_HEADER: str(state.used),
            },
        )

    def used(self, address: str) -> int:
        state = self.addresses.get(address)
        if state is None or state.window != int(time.time() // self.config.weight_window_s):
            return 0
        return state.used

    # -- new orders per account -------------------------------------------------------------------

    def count_order(self, api_key: str) -> tuple[int, int]:
        """Count one new order; (orders in the 10 s window, in the minute), or SimError -1015."""
        cfg = self.config
        now = time.time()
        state = self.orders.get(api_key)
        if state is None:
            state = self.orders[api_key] = OrderState()
        w10, w60 = int(now // 10), int(now // 60)
        if state.window_10s != w10:
            state.window_10s, state.count_10s = w10, 0
        if state.window_1m != w60:
            state.window_1m, state.count_1m = w60, 0
        state.count_10s += 1
        state.count_1m += 1
        if state.count_10s > cfg.order_limit_10s:
            raise self._too_many_orders(state, cfg.order_limit_10s, "10 SECOND", (w10 + 1) * 10 - now)
        if state.count_1m > cfg.order_limit_1m:
            raise self._too_many_orders(state, cfg.order_limit_1m, "1 MINUTE", (w60 + 1) * 60 - now)
        return state.count_10s, state.count_1m

    @staticmethod
    def _too_many_orders(state: OrderState, limit: int, interval: str, left_s: float) -> SimError:
        return SimError(
            -1015,
            f"Too many new orders; current limit is {limit} orders per {interval}.",
            429,
            headers={
                "Retry-After": str(max(1, math.ceil(left_s))),
                ORDERS_10S_HEADER: str(state.count_10s),
                ORDERS_1M_HEADER: str(state.count_1m),
            },
        )

    # -- websocket connection attempts per source address -----------------------------------------

    def ws_attempt(self, address: str) -> bool:
        """Record a connection attempt; False when the address is past its limit (refuse it)."""
        cfg = self.config
        now = time.monotonic()
        attempts = self.ws_attempts.get(address)
        if attempts is None:
            attempts = self.ws_attempts[address] = deque()
        while attempts and attempts[0] <= now - cfg.ws_connect_window_s:
            attempts.popleft()
        attempts.append(now)
        return len(attempts) <= cfg.ws_connect_limit

    # -- admin ------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        now = time.time()
        window = int(now // self.config.weight_window_s)
        mono = time.monotonic()
        cutoff = mono - self.config.ws_connect_window_s
        return {
            "addresses": {
                address: {
                    "usedWeight": st.used if st.window == window else 0,
                    "rejected429": st.rejected if st.window == window else 0,
                    "bans": st.bans,
                    "bannedUntilMs": int(st.banned_until * 1000) if st.banned_until > now else 0,
                }
                for address, st in self.addresses.items()
            },
            "orders": {
                api_key: {
                    "orders10s": st.count_10s if st.window_10s == int(now // 10) else 0,
                    "orders1m": st.count_1m if st.window_1m == int(now // 60) else 0,
                }
                for api_key, st in self.orders.items()
            },
            "wsAttempts": {
                address: sum(1 for t in attempts if t > cutoff)
                for address, attempts in self.ws_attempts.items()
            },
            "limits": {
                "weightPerWindow": self.config.weight_limit_1m,
                "weightWindowS": self.config.weight_window_s,
                "orders10s": self.config.order_limit_10s,
                "orders1m": self.config.order_limit_1m,
                "wsConnectAttempts": self.config.ws_connect_limit,
                "wsConnectWindowS": self.config.ws_connect_window_s,
            },
        }

    def reset(self, address: str | None = None) -> None:
        """Forget weight, bans and connection attempts (of one address, or all and the order counts)."""
        if address is None:
            self.addresses.clear()
            self.orders.clear()
            self.ws_attempts.clear()
        else:
            self.addresses.pop(address, None)
            self.ws_attempts.pop(address, None)
