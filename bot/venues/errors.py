"""Exception taxonomy at the adapter: every ccxt error is mapped once, where the call is made, to a
kind that tells the caller what it may do next."""

from __future__ import annotations

import re
from enum import StrEnum

import ccxt


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


# Binance answers a reused client order id with -4116 (futures) or -2010 "Duplicate order sent." (spot).
_DUPLICATE = re.compile(r'"code"\s*:\s*-4116|Duplicate order|ClientOrderId is duplicated', re.IGNORECASE)
_RETRY_AFTER = re.compile(r"retry[- ]after\D{0,4}(\d+(?:\.\d+)?)", re.IGNORECASE)


def classify(exc: BaseException, *, placing: bool = False) -> ErrorKind:
    """Map an exception to its kind. `placing` marks a create-order call, where a lost response
    means the order may exist."""
    if isinstance(exc, ccxt.DuplicateOrderId) or (
        isinstance(exc, ccxt.InvalidOrder) and _DUPLICATE.search(str(exc))
    ):
        return ErrorKind.DUPLICATE
    if isinstance(exc, ccxt.OrderNotFound):
        return ErrorKind.NOT_FOUND
    if isinstance(exc, ccxt.AuthenticationError | ccxt.AccountSuspended):
        return ErrorKind.AUTH
    if isinstance(exc, ccxt.InsufficientFunds):
        return ErrorKind.INSUFFICIENT_FUNDS
    if isinstance(exc, ccxt.InvalidOrder | ccxt.BadRequest | ccxt.OperationRejected):
        return ErrorKind.INVALID_ORDER
    if isinstance(exc, ccxt.DDoSProtection):  # RateLimitExceeded included: 429/418 mean "not executed"
        return ErrorKind.RATE_LIMITED
    if isinstance(exc, ccxt.InvalidNonce):  # -1021: rejected before execution
        return ErrorKind.TEMPORARY
    if isinstance(exc, ccxt.NetworkError | TimeoutError | ConnectionError | OSError):
        return ErrorKind.AMBIGUOUS if placing else ErrorKind.TEMPORARY
    if isinstance(exc, ccxt.ExchangeError):
        return ErrorKind.FATAL
    return ErrorKind.AMBIGUOUS if placing else ErrorKind.FATAL


def retry_after_s(exc: BaseException, default: float = 1.0) -> float:
    match = _RETRY_AFTER.search(str(exc))
    return float(match.group(1)) if match else default


def short(exc: BaseException, limit: int = 300) -> str:
    """One-line description for journals and alerts (the log redactor still runs over it)."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
