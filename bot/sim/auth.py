"""Request signing as Binance checks it: API key header, HMAC-SHA256 over the raw parameters,
and a timestamp inside the receive window."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl

from bot.sim.accounts import Account, SimError

_SIG = "signature="


def parse_params(query: str, body: str) -> dict[str, str]:
    """Query and form body parameters (the body wins on a clash, as on Binance)."""
    params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    if body:
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


def key_account(accounts: dict[str, Account], api_key: str | None) -> Account:
    """The account behind the X-MBX-APIKEY header (listenKey calls need nothing more)."""
    account = accounts.get(api_key or "")
    if account is None or account.revoked or account.venue != "binance":
        raise SimError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    return account


def verify_signed(
    accounts: dict[str, Account],
    api_key: str | None,
    query: str,
    body: str,
    params: dict[str, str],
    now_ms: int,
    recv_window_max_ms: int,
) -> Account:
    account = key_account(accounts, api_key)
    # Binance signs "totalParams": the raw query string followed by the raw body.
    total = query + body if query and body else query or body
    cut = total.rfind("&" + _SIG)
    if cut >= 0:
        payload, signature = total[:cut], total[cut + 1 + len(_SIG) :]
    elif total.startswith(_SIG):
        payload, signature = "", total[len(_SIG) :]
    else:
        raise SimError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
    if "&" in signature:  # something after the signature: it was not the last parameter
        raise SimError(-1022, "Signature for this request is not valid.", 401)
    expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise SimError(-1022, "Signature for this request is not valid.", 401)
    try:
        timestamp = int(params["timestamp"])
        recv_window = int(params.get("recvWindow", "5000"))
    except (KeyError, ValueError):
        msg = "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
        raise SimError(-1102, msg) from None
    if not 0 < recv_window <= recv_window_max_ms:
        raise SimError(-1131, "recvWindow must be less than 60000")
    if timestamp > now_ms + 1000 or now_ms - timestamp > recv_window:
        raise SimError(-1021, "Timestamp for this request is outside of the recvWindow.")
    return account
