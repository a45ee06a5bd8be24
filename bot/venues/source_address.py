"""Outgoing connections from a chosen source address (`venues.<name>.source_address`).

A venue counts request weight and websocket connection attempts per source address, so a process
(a cluster shard, docs/cluster.md) that binds its connections to an address of its own has a budget
of its own. ccxt takes a caller's aiohttp session (`session` in its config; its maintainers'
answer for binding, ccxt/ccxt#1819) and opens ccxt.pro's websockets with that same session's
`ws_connect`, so one session whose connector binds the address carries every request of a venue's
clients: REST, listenKey calls and the user-data and public streams (docs/config.md, "venues").
"""

from __future__ import annotations

import ipaddress
import socket

import aiohttp


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def address_problem(address: str) -> str | None:
    """Why `address` cannot be a source address here (not an IP address, or not one of this host's,
    which is what binding to it tells), or None."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address"
    with socket.socket(_family(str(ip)), socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(ip), 0))
        except OSError as exc:
            return f"{ip} is not an address of this host ({exc.strerror or exc})"
    return None


def connector(source_address: str | None, *, limit: int = 100) -> aiohttp.TCPConnector:
    """A connector whose connections leave from `source_address` (None: the system's choice).
    Bound, it resolves names only in the address's family: an IPv4 source cannot reach an IPv6
    peer."""
    if source_address is None:
        return aiohttp.TCPConnector(limit=limit)
    return aiohttp.TCPConnector(limit=limit, local_addr=(source_address, 0), family=_family(source_address))


def session(source_address: str | None, *, limit: int = 0) -> aiohttp.ClientSession:
    """An aiohttp session for ccxt clients; `trust_env=False`: a proxy from the environment would
    be the address the venue sees, not ours."""
    return aiohttp.ClientSession(connector=connector(source_address, limit=limit), trust_env=False)
