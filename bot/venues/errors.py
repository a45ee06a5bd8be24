"""Exception taxonomy at the adapter: every ccxt error is mapped once, where the call is made, to a
kind (bot.core.errors.ErrorKind) that tells the caller what it may do next. The venue-specific part
(which answer means "duplicate client id") comes from the venue's adapter."""

from __future__ import annotations

import re

import ccxt

from bot.core.errors import ErrorKind

_RETRY_AFTER = re.compile(r"retry[- ]after\D{0,4}(\d+(?:\.\d+)?)", re.IGNORECASE)


def classify(
    exc: BaseException, *, placing: bool = False, duplicate: re.Pattern[str] | None = None
) -> ErrorKind:
    """Map an exception to its kind. `placing` marks a create-order call, where a lost response
    means the order may exist; `duplicate` matches the venue's "client id already used" answer."""
    if isinstance(exc, ccxt.DuplicateOrderId) or (
        duplicate is not None and isinstance(exc, ccxt.ExchangeError) and duplicate.search(str(exc))
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
    # 429/418 and Bybit's 10006 mean "not executed". ccxt 4.5 derives RateLimitExceeded from
    # NetworkError, not DDoSProtection: named here so it is not taken for an ambiguous outcome.
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return ErrorKind.RATE_LIMITED
    if isinstance(exc, ccxt.InvalidNonce):  # a stale timestamp: rejected before execution
        return ErrorKind.TEMPORARY
    if isinstance(exc, ccxt.NetworkError | TimeoutError | ConnectionError | OSError):
        return ErrorKind.AMBIGUOUS if placing else ErrorKind.TEMPORARY
    if isinstance(exc, ccxt.ExchangeError):
        return ErrorKind.FATAL
    return ErrorKind.AMBIGUOUS if placing else ErrorKind.FATAL


def retry_after_s(exc: BaseException, default: float = 1.0) -> float:
    match = _RETRY_AFTER.search(str(exc))
    return float(match.group(1)) if match else default
