"""The request budget of one source address, the venue clock, and the Binance facts behind them:
pure arithmetic on a hand-driven clock."""

from __future__ import annotations

import asyncio

import ccxt
import pytest

from bot.core.errors import ErrorKind
from bot.live.budget import RequestBudget, note_error
from bot.live.venue_clock import VenueClock
from bot.venues.binance.adapter import BINANCE
from bot.venues.generic import GENERIC, GENERIC_LANDING_MS


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Client:
    def __init__(self, headers: dict[str, str]) -> None:
        self.last_response_headers = headers


def test_background_share_and_the_venues_own_count() -> None:
    clock = Clock(60 * 100 + 1)
    budget = RequestBudget(2400, background_share=0.5, clock_s=clock)
    assert budget.room(1200, 0.5)
    budget.charge(1000)
    assert not budget.room(201, 0.5)
    assert budget.room(200, 0.5)
    budget.observe(2000)  # the venue counts more (another process behind the address): it wins
    assert budget.used == 2000
    assert budget.room(160, 0.9)
    assert not budget.room(161, 0.9)
    clock.now += 60  # a new clock minute starts from zero
    assert budget.used == 2000  # until something rolls the window
    budget.charge(5)
    assert budget.used == 5
    assert budget.peak_1m == 2000


def test_reads_sent_just_before_the_minute_ends_count_in_the_next_one_too() -> None:
    """A read counted at 59.5 s may reach the venue after its minute has rolled: it is carried."""
    clock = Clock(60 * 100 + 50)
    budget = RequestBudget(100, background_share=0.5, clock_s=clock)
    budget.charge(30)  # ten seconds before the end: the venue has it in this minute
    clock.now = 60 * 100 + 59.5
    budget.charge(10)
    clock.now = 60 * 101 + 0.1
    budget.charge(1)
    assert budget.used == 11  # the 10 sent at 59.5 s, and this one
    assert budget.room(39, 0.5)
    assert not budget.room(40, 0.5)
    clock.now = 60 * 102 + 5  # nothing near the last boundary: a clean minute
    budget.charge(1)
    assert budget.used == 1


async def test_acquire_waits_for_the_next_minute_when_the_share_is_spent() -> None:
    clock = Clock(60 * 100 + 57)
    budget = RequestBudget(100, background_share=0.5, clock_s=clock)
    budget.charge(48)
    clock.now = 60 * 100 + 59.9
    waiter = asyncio.create_task(budget.acquire(5))
    await asyncio.sleep(0.01)
    assert not waiter.done()  # 53 > 50: waits for the next minute (0.1 s away)
    clock.now = 60 * 101 + 0.01
    await asyncio.wait_for(waiter, 1)
    assert budget.used == 5
    assert budget.waits == 1


async def test_a_429_pauses_for_retry_after_and_a_418_counts_as_a_ban() -> None:
    clock = Clock(60 * 100)
    budget = RequestBudget(2400, clock_s=clock)
    client = Client({"Retry-After": "7", "X-MBX-USED-WEIGHT-1M": "2401"})
    exc = ccxt.DDoSProtection('binanceusdm 429 Too Many Requests {"code":-1003,"msg":"Too many requests"}')
    assert note_error(budget, BINANCE, client, exc)
    assert budget.pause_left_s() == pytest.approx(7)
    assert budget.used == 2401
    assert (budget.rate_limited, budget.banned) == (1, 0)
    ban = ccxt.DDoSProtection(
        'binanceusdm 418 I\'m a teapot {"code":-1003,"msg":"Way too many requests; IP banned"}'
    )
    client.last_response_headers = {"Retry-After": "120"}
    assert note_error(budget, BINANCE, client, ban)
    assert budget.banned == 1
    assert budget.pause_left_s() == pytest.approx(120)
    waiter = asyncio.create_task(budget.acquire(1, share=0.9))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    waiter.cancel()
    # An account's order-count 429 (-1015) does not pause the address's reads.
    fresh = RequestBudget(2400, clock_s=clock)
    orders = ccxt.DDoSProtection('binanceusdm 429 {"code":-1015,"msg":"Too many new orders"}')
    assert note_error(fresh, BINANCE, Client({"Retry-After": "3"}), orders)
    assert fresh.pause_left_s() == 0
    assert not note_error(fresh, BINANCE, Client({}), ccxt.NetworkError("reset"))


def test_venue_clock_takes_the_middle_of_the_round_trip() -> None:
    local = Clock(1_000_000.0)
    clock = VenueClock(now=local)
    clock.observe(venue_ms=1_000_600, sent_local_ms=1_000_000.0, received_local_ms=1_000_200.0)
    assert clock.offset_ms == 500  # the venue read its clock at local 1,000,100
    assert clock.uncertainty_ms == 100
    local.now = 1_001_000.0
    assert clock.now_ms() == 1_001_500


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (
            '{"code":-5028,"msg":"Timestamp for this request is outside of the ME recvWindow."}',
            ErrorKind.TEMPORARY,
        ),
        (
            '{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}',
            ErrorKind.TEMPORARY,
        ),
        ('{"code":-4116,"msg":"ClientOrderId is duplicated."}', ErrorKind.DUPLICATE),
        ('{"code":-4164,"msg":"Order\'s notional must be no smaller than 100"}', ErrorKind.INVALID_ORDER),
    ],
)
def test_binance_errors_that_mean_not_executed(message: str, kind: ErrorKind) -> None:
    """-5028 and -1021 are refusals before execution (a new request is safe), not invalid orders."""
    assert BINANCE.classify(ccxt.BadRequest(f"binanceusdm {message}"), placing=True) is kind


def test_order_params_carry_timestamp_and_recv_window_where_the_venue_takes_them() -> None:
    params = BINANCE.order_params("cb.x", reduce_only=False, ioc=True, timestamp_ms=123, recv_window_ms=2000)
    assert params == {"clientOrderId": "cb.x", "timeInForce": "IOC", "timestamp": 123, "recvWindow": 2000}
    assert BINANCE.landing_window_ms(2000) == 2000
    assert BINANCE.weight("balance") == 5
    assert BINANCE.weight("order") == 0
    assert "recvWindow" not in GENERIC.order_params("c", reduce_only=False, ioc=False, recv_window_ms=2000)
    assert GENERIC.landing_window_ms(2000) == GENERIC_LANDING_MS
