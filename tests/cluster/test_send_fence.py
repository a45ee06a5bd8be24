"""A shard frozen past its heartbeat bound sends nothing when it resumes (docs/cluster.md,
"Guarantees"): by then the other shards count it dead and serve its followers, and a deterministic
client id sent again after the first order filled is a second order on Binance. The freeze is the
event loop blocked in a synchronous sleep: to the process, the same as SIGSTOP and SIGCONT."""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal

from redis.asyncio import Redis

from bot.cluster.assignment import all_partitions
from bot.cluster.codec import StreamFill
from bot.cluster.consume import FillHandler
from bot.cluster.keys import Keys
from bot.cluster.shard import PartitionLoop
from bot.core.errors import ErrorKind
from bot.core.types import Intent, OrderStatus, Side
from bot.live.executor import OrderPlacer
from bot.venues import VenueMode, adapter_for, make_rest
from tests.cluster.helpers import KEYS_PREFIX, eventually

TTL_S = 0.5


def handler(partition: str) -> FillHandler:
    async def handle(item: StreamFill) -> bool:
        return True

    return handle


async def test_a_shard_resumed_past_its_heartbeat_bound_sends_no_order(redis_client: Redis) -> None:
    loop = PartitionLoop(redis_client, Keys(KEYS_PREFIX), "shard-a", ["alpha"], all_partitions(4), handler,
                         heartbeat_s=0.1, heartbeat_ttl_s=TTL_S, grace_s=0.1, claim_idle_ms=500,
                         block_ms=100)  # fmt: skip
    assert loop.fence_reason() is not None  # no beat yet: nothing is this shard's
    task = asyncio.create_task(loop.run())
    # Nothing listens on port 9: an order that got past the fence would fail on the network and be
    # retried, not come back fenced at once.
    client = make_rest("binanceusdm", VenueMode.SIM, api_key="k", secret="s",
                       rest_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9")  # fmt: skip
    placer = OrderPlacer(client, "f1", adapter_for("binanceusdm"), fence=loop.fence_reason)
    intent = Intent(lead="alpha", follower="f1", symbol="BTC/USDT:USDT", trigger="t1", leg=0, side=Side.BUY,
                    qty=Decimal("0.01"), reduce_only=False, ref_price=Decimal("60000"),
                    target=Decimal("0.01"), current=Decimal(0), client_order_id="cb.t1.f1.0")  # fmt: skip

    async def beating() -> bool:
        return loop.fence_reason() is None

    try:
        await eventually(beating, timeout_s=5)

        async def owning() -> bool:  # the only live shard: every partition, after the grace
            return loop.owned() == all_partitions(4)

        await eventually(owning, timeout_s=5)
        time.sleep(TTL_S + 0.3)  # frozen: no beat, the event loop does not run
        reason = loop.fence_reason()  # the first thing it does once resumed
        assert reason is not None
        assert "past its heartbeat bound" in reason
        outcome = await asyncio.wait_for(placer.place(intent, intent.qty, order_type="market", price=None), 1)
        assert outcome.status is OrderStatus.REJECTED
        assert outcome.error is ErrorKind.FENCED
        await eventually(beating, timeout_s=5)  # beating again, it may send again
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
