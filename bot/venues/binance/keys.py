"""Key permissions on Binance: a trading daemon's key must not be able to withdraw.

`GET /sapi/v1/account/apiRestrictions` tells whether a key has withdrawals enabled. It has no
testnet or demo-trading host (ccxt raises NotSupported there): those keys hold no real funds and
are accepted (docs/testnet.md)."""

from __future__ import annotations

from typing import Any

import ccxt

from bot.venues.base import VenueMode

WITHDRAWAL_REFUSED = (
    "the key has withdrawals enabled; remove that permission or set allow_withdrawal_keys: true"
)


async def key_problem(client: Any, mode: VenueMode, *, allow_withdrawal: bool) -> str | None:
    if mode in (VenueMode.TESTNET, VenueMode.DEMO):
        return None
    try:
        restrictions = await client.sapi_get_account_apirestrictions()
    except ccxt.NotSupported:
        return None
    if restrictions.get("enableWithdrawals") and not allow_withdrawal:
        return WITHDRAWAL_REFUSED
    return None
