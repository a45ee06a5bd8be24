"""Cost of the local exchange's trigger pass (bot/sim/conditional.py): N stop-market orders waiting
on one symbol, one account each, and the time of a price move that triggers none of them (the scan
every move pays), then of one that triggers all of them.

    python scripts/bench_conditional.py --orders 10000 --moves 100
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal

from bot.sim.conditional import Conditional
from bot.sim.config import load_sim_config
from bot.sim.matching import MatchingEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--moves", type=int, default=100)
    args = parser.parse_args()
    engine = MatchingEngine(load_sim_config(tick_interval_s=0))
    for i in range(args.orders):
        account = engine.create_account(f"k{i}", "s", Decimal(1000))
        account.position("BTCUSDT").amt = Decimal("0.001")  # a long each stop can reduce
        account.position("BTCUSDT").entry_price = Decimal(60_000)
        cond = Conditional(
            algo_id=engine.conditionals.next_algo_id(), order_id=engine.reserve_order_id(),
            client_id=f"c{i}", symbol="BTCUSDT", side="SELL", type="STOP_MARKET", qty=Decimal("0.001"),
            trigger_price=Decimal(50_000), direction="down", working_type="MARK_PRICE", reduce_only=True,
            close_position=False, price_protect=False, time_ms=0,
        )  # fmt: skip
        engine.conditionals.add(account, cond)
    start = time.perf_counter()
    for k in range(args.moves):
        engine.set_price("BTCUSDT", Decimal(60_000 + k))
    scan_ms = (time.perf_counter() - start) / args.moves * 1000
    start = time.perf_counter()
    engine.set_price("BTCUSDT", Decimal(49_000))
    fire_ms = (time.perf_counter() - start) * 1000
    flat = sum(1 for a in engine.accounts.values() if a.position("BTCUSDT").amt == 0)
    print(f"{args.orders} waiting orders: {scan_ms:.2f} ms per price move that triggers none")
    print(f"one move triggering all: {fire_ms:.0f} ms ({fire_ms * 1000 / args.orders:.0f} us per order), "
          f"{flat} positions closed")  # fmt: skip


if __name__ == "__main__":
    main()
