"""Who may call the API: the bearer token of control calls, and whether the API listens beyond
loopback (then the dashboard's data needs the token too; docs/dashboard.md)."""

from __future__ import annotations

import hmac
import ipaddress


def bearer_ok(header: str, token: str | None) -> bool:
    """`header` is the request's Authorization value; no configured token refuses everything."""
    if not token:
        return False
    return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve anywhere
        return False
