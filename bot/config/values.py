"""The value types of the config models: decimals read from their source text, leverage, flags,
account ids, durations (each with the error message a user sees next to the key)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from bot.core.rounding import dec


def _to_decimal(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, float | int | Decimal):
        return dec(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip().replace("_", ""))
        except InvalidOperation:
            raise ValueError(f"must be a decimal number, got {value!r}") from None
    return value


def _to_leverage(value: Any) -> Any:
    if value == "lead":
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 125:
        return value
    raise ValueError(f"must be 'lead' or an integer from 1 to 125, got {value!r}")


def to_json_flag(value: Any) -> Any:
    if isinstance(value, bool) or value == "auto":
        return value
    raise ValueError(f"must be true, false or auto, got {value!r}")


Amount = Annotated[Decimal, BeforeValidator(_to_decimal), Field(gt=0)]
NonNegative = Annotated[Decimal, BeforeValidator(_to_decimal), Field(ge=0)]
Fraction = Annotated[Decimal, BeforeValidator(_to_decimal), Field(gt=0, le=1)]
# Take-profit / stop-loss distance from the entry, in percent of the entry price (a stop-loss past
# 100 % would sit at or below zero for a long).
TakeProfitPct = Annotated[Decimal, BeforeValidator(_to_decimal), Field(gt=0, le=1000)]
StopLossPct = Annotated[Decimal, BeforeValidator(_to_decimal), Field(gt=0, lt=100)]
AccountId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Leverage = Annotated[int | Literal["lead"], BeforeValidator(_to_leverage)]
Seconds = Annotated[float, Field(gt=0)]
