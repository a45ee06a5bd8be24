"""A client factory for fixtures: every ccxt client it builds is closed when the test ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

ClientFactory = Callable[..., Any]


@asynccontextmanager
async def closing(make: ClientFactory) -> AsyncIterator[ClientFactory]:
    made: list[Any] = []

    def factory(*args: Any, **kwargs: Any) -> Any:
        client = make(*args, **kwargs)
        made.append(client)
        return client

    try:
        yield factory
    finally:
        for client in made:
            await client.close()
