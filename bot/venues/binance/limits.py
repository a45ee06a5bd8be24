"""Binance USD-M futures request rules the bot plans around (docs/sim.md, "Venue rules", names the
Binance page behind each figure; docs/guarantees.md explains how the executor uses them).

- `recvWindow`: the gateway rejects a request whose `timestamp` is older than `recvWindow` when it
  arrives (-1021), and the matching engine re-checks it when the order gets there (-5028
  ME_RECVWINDOW_REJECT). An order accepted by the gateway therefore executes before
  `timestamp + recvWindow` on the venue's clock, or never.
- Request weight: 2,400 per minute per source address (IP) across all keys, the minute aligned to
  the clock; every response says what was used in `X-MBX-USED-WEIGHT-1M`. New orders weigh 0 on
  the IP limit (they count on the account's order limits instead).
"""

from __future__ import annotations

RECV_WINDOW_PARAM = "recvWindow"
RECV_WINDOW_MAX_MS = 60_000  # -1131 above this

WEIGHT_LIMIT_1M = 2400
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"

# The calls the bot makes, by ccxt method: the weight Binance publishes for the request behind it.
WEIGHTS: dict[str, int] = {
    "balance": 5,  # fetch_balance: GET /fapi/v3/account
    "positions": 5,  # fetch_positions: GET /fapi/v3/positionRisk (leverageBracket, 1, once per client)
    "order_lookup": 1,  # fetch_order by origClientOrderId: GET /fapi/v1/order
    "time": 1,  # fetch_time: GET /fapi/v1/time
    "leverage": 1,  # set_leverage: POST /fapi/v1/leverage
    "key_check": 1,  # GET /sapi/v1/account/apiRestrictions
    "trades": 5,  # fetch_my_trades: GET /fapi/v1/userTrades
    "listen_key": 1,  # POST / PUT /fapi/v1/listenKey
    "order": 0,  # POST /fapi/v1/order: 0 on the IP limit
    "orders": 5,  # fetch_orders: GET /fapi/v1/allOrders
    "book": 10,  # fetch_order_book: GET /fapi/v1/depth at its default limit (500)
    "income": 30,  # GET /fapi/v1/income (fees and funding, bot.venues.binance.income)
}
DEFAULT_WEIGHT = 5


def landing_window_ms(recv_window_ms: int) -> int:
    """After its timestamp, how long an accepted order may still reach the matching engine."""
    return recv_window_ms
