"""The error taxonomy every venue adapter maps its exceptions to (bot.venues.errors), and the one-line
rendering of an exception for journals, alerts and the status API."""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    TEMPORARY = "temporary"  # safe to retry: the request was not acted on
    RATE_LIMITED = "rate_limited"  # rejected for request weight: wait, then retry
    AMBIGUOUS = "ambiguous"  # may or may not have been acted on: look up before any retry
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INVALID_ORDER = "invalid_order"
    DUPLICATE = "duplicate"  # the client order id exists already: look it up
    NOT_FOUND = "not_found"
    AUTH = "auth"  # key revoked, wrong or lacking permission: disable the account
    FATAL = "fatal"
    # Outcomes the executor itself concludes, never an exception's kind:
    LOOKUP_FAILED = "lookup_failed"  # an ambiguous order whose lookup gave no answer
    RETRIES_EXHAUSTED = "retries_exhausted"
    FENCED = "fenced"  # not sent: this process may no longer send for the follower (a cluster shard)


def short(exc: BaseException, limit: int = 300) -> str:
    """One-line description for journals and alerts (the log redactor still runs over it)."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
