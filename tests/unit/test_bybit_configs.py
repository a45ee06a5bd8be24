"""The shipped Bybit configs load and pass `copybot check-config` (no --connect: no network)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.commands import check_config
from bot.config.models import load_config
from bot.venues import VenueMode, adapter_for

ROOT = Path(__file__).resolve().parents[2]
_ACCOUNTS = ("BYBIT_LEAD", "BYBIT_F1", "BYBIT_F2")
ENV = {f"{a}_{part}": "x" for a in _ACCOUNTS for part in ("API_KEY", "SECRET")} | {"COPYBOT_API_TOKEN": "x"}


@pytest.mark.parametrize(
    ("name", "mode"), [("testnet-bybit", VenueMode.TESTNET), ("demo-bybit", VenueMode.DEMO)]
)
def test_bybit_configs_pass_check_config(
    name: str, mode: VenueMode, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ROOT / "config" / f"{name}.yaml"
    cfg = load_config(path, env=ENV)
    (venue,) = cfg.venues.values()
    assert (venue.exchange, venue.mode) == ("bybit", mode)
    assert adapter_for(venue.exchange).name == "bybit"
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    assert check_config.run(argparse.Namespace(config=str(path), connect=False)) == 0
    assert "valid (1 lead(s), 2 follower(s))" in capsys.readouterr().out
