"""Deterministic client order ids: the idempotency key of every follower order.

`cb<sep><intent hash><sep><follower hash><sep><leg>`, e.g. `cb.k3x9q2m7ab.p4t6zq.0`: the same (lead,
trigger, follower, symbol, leg) always gives the same id, so a restart or a retry that replans the
same lead trade finds the order already placed (journal, lookup by client id) instead of doubling it.
A venue does not always refuse a reused id (Binance only among OPEN orders), so the id is the key we
look orders up by, not a guard the venue keeps for us (docs/guarantees.md).

The separator is the venue's (`ClientIdFormat`, from its adapter): "." where the venue allows it,
"-" where it allows only letters, digits, "-" and "_". Ids once written keep working after a change
of format: the journal stores each intent's id as sent.

The intent hash (10 base32 chars, 50 bits) covers lead, trigger and symbol; the follower hash
(6 chars, 30 bits) the follower. Client ids are unique per exchange account, so two followers
whose 30-bit hashes collide are harmless at the venue; anything that stores ids from many
followers together must key them by (follower, client id).

Lower-case base32 (a-z, 2-7), the separator and the leg digits: fits every venue's alphabet.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

PREFIX = "cb"
MAX_LEN = 36
_INTENT_CHARS = 13  # 65 bits: (lead, trigger, symbol)
_FOLLOWER_CHARS = 12  # 60 bits: distinct followers never share an id
_PATTERN = re.compile(
    rf"^{PREFIX}([.-])([a-z2-7]{{{_INTENT_CHARS}}})\1([a-z2-7]{{{_FOLLOWER_CHARS}}})\1(0|[1-9][0-9]*)$"
)


@dataclass(frozen=True, slots=True)
class ClientIdFormat:
    """A venue's client order id rule as far as our ids need it."""

    separator: str = "."
    max_len: int = MAX_LEN

    def __post_init__(self) -> None:
        if self.separator not in (".", "-"):
            raise ValueError(f"ClientIdFormat.separator: '.' or '-', got {self.separator!r}")


DOTTED = ClientIdFormat(".")


def _digest(*parts: str, chars: int) -> str:
    h = hashlib.blake2b(digest_size=16, person=b"copybot-clid")
    for part in parts:
        # Length-prefixed, so ("ab", "c") and ("a", "bc") hash differently.
        encoded = part.encode()
        h.update(len(encoded).to_bytes(4, "big"))
        h.update(encoded)
    return base64.b32encode(h.digest()).decode("ascii").lower()[:chars]


def client_order_id(
    lead: str, trigger: str, follower: str, symbol: str, leg: int, fmt: ClientIdFormat = DOTTED
) -> str:
    for name, value in (("lead", lead), ("trigger", trigger), ("follower", follower), ("symbol", symbol)):
        if not value:
            raise ValueError(f"client_order_id: {name} must be a non-empty string, got {value!r}")
    if isinstance(leg, bool) or not isinstance(leg, int) or leg < 0:
        raise ValueError(f"client_order_id: leg must be a non-negative int, got {leg!r}")
    sep = fmt.separator
    cid = (
        f"{PREFIX}{sep}{_digest(lead, trigger, symbol, chars=_INTENT_CHARS)}"
        f"{sep}{_digest(follower, chars=_FOLLOWER_CHARS)}{sep}{leg}"
    )
    if len(cid) > fmt.max_len:
        raise ValueError(f"client_order_id: leg {leg} makes the id {len(cid)} chars, over {fmt.max_len}")
    return cid


def parse(client_id: str) -> tuple[str, str, int] | None:
    """(intent hash, follower hash, leg) of one of our ids; None for anything else."""
    match = _PATTERN.match(client_id)
    if match is None:
        return None
    return match.group(2), match.group(3), int(match.group(4))


def intent_prefix(client_id: str) -> str:
    """Everything before the leg, trailing separator included: the ids of all legs of one intent
    start with it (`cb.<intent>.<follower>.`)."""
    match = _PATTERN.match(client_id)
    if match is None:
        raise ValueError(f"intent_prefix: {client_id!r} is not a copybot client order id")
    return client_id[: match.start(4)]
