"""`copybot status --follower ID`: the results table fits 80 columns whatever the figures."""

from __future__ import annotations

from bot.commands.pnl_table import pnl_lines


def test_table_fits_80_columns_with_long_ids_and_large_figures() -> None:
    big = {"realized": "-123456789.1234", "fees": "98765432.1234", "funding": "-1234567.8912",
           "slippage": "7654321.0001", "net": "-999999999.9999", "fills": 123456}  # fmt: skip
    windows = {span: big for span in ("1d", "7d", "30d", "all")}
    follower = {"state": "active", "equity": "1", "pnl": {
        "method": "average cost", "unrealized": "-5.0000", "windows": windows,
        "leads": {"a-very-long-lead-identifier-indeed": {"unrealized": "-5.0000", "windows": windows},
                  "b": {"unrealized": "0.0000", "windows": windows}},
        "income_log": {"reads": 3, "last_error": "timeout"}}}  # fmt: skip
    lines = pnl_lines("f1", follower)
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    rows = [line for line in lines if line.startswith(("a-very-lo~", "b ", "(all)"))]
    assert len(rows) == 12  # 4 windows for each lead and for the total over both
    assert "last error: timeout" in lines[-1]


def test_a_follower_without_fills_says_so() -> None:
    lines = pnl_lines("f1", {"state": "active", "equity": "10", "pnl": {"leads": {}, "windows": {}}})
    assert "no copied fills yet" in lines
