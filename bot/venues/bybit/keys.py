"""Key permissions on Bybit: a trading daemon's key must not be able to withdraw.

`GET /v5/user/query-api` lists the key's permissions; `Withdraw` under `Wallet` means it may move
funds off the exchange. Testnet serves it too. Demo trading (api-demo) keys hold no real funds: a
demo host that does not answer this query is accepted (docs/testnet.md)."""

from __future__ import annotations

from typing import Any

import ccxt

from bot.venues.base import VenueMode

WITHDRAWAL_REFUSED = (
    "the key has withdrawals enabled (Wallet: Withdraw); remove that permission "
    "or set allow_withdrawal_keys: true"
)


def may_withdraw(reply: dict[str, Any]) -> bool:
    permissions = ((reply or {}).get("result") or {}).get("permissions") or {}
    return any("Withdraw" in (values or []) for values in permissions.values())


async def key_problem(client: Any, mode: VenueMode, *, allow_withdrawal: bool) -> str | None:
    try:
        reply = await client.privateGetV5UserQueryApi()
    except (ccxt.NotSupported, ccxt.BadRequest, ccxt.PermissionDenied):
        if mode is VenueMode.DEMO:
            return None
        raise
    if may_withdraw(reply) and not allow_withdrawal:
        return WITHDRAWAL_REFUSED
    return None
