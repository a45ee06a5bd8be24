"""Key permissions: a trading daemon's key must not be able to withdraw.

On Binance, `GET /sapi/v1/account/apiRestrictions` tells whether a key has withdrawals enabled.
Venues that cannot tell are accepted (documented in docs/testnet.md)."""

from __future__ import annotations

from typing import Any


async def check_key_permissions(client: Any, *, allow_withdrawal: bool) -> str | None:
    """A reason to refuse the key, or None."""
    if not str(getattr(client, "id", "")).startswith("binance"):
        return None
    restrictions = await client.sapi_get_account_apirestrictions()
    if restrictions.get("enableWithdrawals") and not allow_withdrawal:
        return "the key has withdrawals enabled; remove that permission or set allow_withdrawal_keys: true"
    return None
