"""A parsed Binance REST call as the endpoint handlers (bot.sim.endpoints, bot.sim.marketdata) see it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.sim.accounts import Account, Order
from bot.sim.matching import MatchingEngine
from bot.sim.userstream import UserStream


@dataclass(slots=True)
class Call:
    engine: MatchingEngine
    stream: UserStream
    account: Account | None
    params: dict[str, str]
    recv_ns: int
    order: Order | None = None  # the order placed by this call, stamped with its ack time

    @property
    def acct(self) -> Account:
        assert self.account is not None, "signed route without an account"
        return self.account


Handler = Callable[[Call], Any]
