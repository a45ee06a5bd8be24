"""Key permissions: a trading daemon's key must not be able to withdraw.

On Binance, `GET /sapi/v1/account/apiRestrictions` tells whether a key has withdrawals enabled. It
has no testnet or demo-trading host (ccxt raises NotSupported there): those keys hold no real funds
and are accepted, as are keys on venues that cannot tell (docs/testnet.md)."""

from __future__ import annotations

from typing import Any

import ccxt

from bot.venues.clients import VenueMode


async def check_key_permissions(client: Any, *, allow_withdrawal: bool, mode: VenueMode) -> str | None:
    """A reason to refuse the key, or None."""
    if mode in (VenueMode.TESTNET, VenueMode.DEMO) or not str(getattr(client, "id", "")).startswith(
        "binance"
    ):
        return None
    try:
        restrictions = await client.sapi_get_account_apirestrictions()
    except ccxt.NotSupported:
        return None
    if restrictions.get("enableWithdrawals") and not allow_withdrawal:
        return "the key has withdrawals enabled; remove that permission or set allow_withdrawal_keys: true"
    return None
