"""The one percentile definition (nearest rank), for floats and Decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.core.stats import percentile


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 0.5, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0.5, 3.0),
        ([4.0, 1.0, 3.0, 2.0], 1.0, 4.0),
        (list(map(float, range(1, 101))), 0.99, 99.0),
        (list(map(float, range(1, 201))), 0.99, 198.0),
        ([], 0.5, None),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_percentile_refuses_a_fraction_out_of_range() -> None:
    with pytest.raises(ValueError, match="q must be in"):
        percentile([1.0], 0)


def test_percentile_of_decimals_is_an_observed_value() -> None:
    values = [Decimal("-3"), Decimal("1.5"), Decimal("2"), Decimal("7")]
    assert percentile(values, Decimal("0.5")) == Decimal("1.5")
    assert percentile(values, Decimal("0.9")) == Decimal("7")
    assert percentile([], Decimal("0.5")) is None
