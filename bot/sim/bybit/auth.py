"""Bybit V5 request signing: X-BAPI-API-KEY, X-BAPI-TIMESTAMP, X-BAPI-RECV-WINDOW and X-BAPI-SIGN =
hex HMAC-SHA256(secret, timestamp + api_key + recv_window + (raw query | raw JSON body)), and the
private websocket's auth op (HMAC of "GET/realtime" + expires)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from bot.sim.accounts import Account
from bot.sim.bybit.venue import VENUE, BybitError


def account_of(accounts: dict[str, Account], api_key: str | None) -> Account | None:
    account = accounts.get(api_key or "")
    if account is None or account.revoked or account.venue != VENUE:
        return None
    return account


def verify_rest(
    accounts: dict[str, Account],
    headers: Mapping[str, str],
    payload: str,
    now_ms: int,
    default_recv_window: int,
) -> Account:
    get = headers.get
    api_key = get("X-BAPI-API-KEY")
    timestamp, sign = get("X-BAPI-TIMESTAMP"), get("X-BAPI-SIGN")
    recv_window = get("X-BAPI-RECV-WINDOW") or str(default_recv_window)
    if not api_key or not timestamp or not sign:
        raise BybitError(
            10003 if not api_key else 10004,
            f"empty value: apiTimestamp[{timestamp or ''}] apiKey[{api_key or ''}] "
            f"apiSignature[{sign or ''}]: openapi sign params error!",
        )
    account = account_of(accounts, api_key)
    if account is None:
        raise BybitError(10003, "API key is invalid.")
    try:
        ts, window = int(timestamp), int(recv_window)
    except ValueError:
        raise BybitError(
            10002, "invalid request, please check your timestamp and recv_window param"
        ) from None
    # Bybit: server_time - recv_window <= timestamp < server_time + 1000
    if not (now_ms - window <= ts < now_ms + 1000):
        raise BybitError(
            10002,
            f"invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{ts}],server_timestamp[{now_ms}],recv_window[{window}]",
        )
    text = timestamp + api_key + recv_window + payload
    expected = hmac.new(account.secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sign.lower()):
        raise BybitError(10004, f"error sign! origin_string[{text}]")
    return account


def ws_auth_error(accounts: dict[str, Account], args: object, now_ms: int) -> tuple[Account | None, str]:
    """(account, "") when the auth op is good, else (None, Bybit's ret_msg)."""
    if not isinstance(args, list) or len(args) != 3:
        return None, "Params Error"
    api_key, expires, sign = (str(a) for a in args)
    account = account_of(accounts, api_key)
    if account is None:
        return None, "API key is invalid."
    try:
        expires_ms = int(expires)
    except ValueError:
        return None, "Params Error"
    if expires_ms <= now_ms:
        return None, "Params Error"  # what Bybit answers to an expired auth
    expected = hmac.new(
        account.secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, sign.lower()):
        return None, "Invalid sign"
    return account, ""
