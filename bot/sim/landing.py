"""Late landing, shared by the Binance and Bybit REST hosts (docs/sim.md, "late_landing_ms"): an
order the gateway accepted reaches the matching engine `delay_s` later, and the HTTP answer waits for
it. The order lands even if the client hangs up meanwhile: aiohttp cancels the request handler, not
the landing task, which is shielded from it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # an order that landed after its client hung up: nobody awaits the result


class LateLanding:
    def __init__(self) -> None:
        self._landing: set[asyncio.Task[Any]] = set()  # orders still on their way

    async def land(self, place: Callable[[], T], delay_s: float) -> T:
        """`place()` (the handler that hands the order to the engine) after `delay_s`; its result,
        or its exception (a reject at the engine), is the request's answer."""

        async def later() -> T:
            await asyncio.sleep(delay_s)
            return place()

        task = asyncio.ensure_future(later())
        self._landing.add(task)
        task.add_done_callback(self._landing.discard)
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    def close(self) -> None:
        """The exchange stops: orders still on their way never land."""
        for task in list(self._landing):
            task.cancel()
        self._landing.clear()
