"""Config loading: every problem reported with file and key path, inline secrets refused,
Decimal amounts exact, shipped config files valid."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.config.models import ConfigError, load_config, parse_config
from bot.config.secrets import SecretError
from bot.core.redaction import clear_secrets, known_secrets
from bot.venues.base import VenueMode

ROOT = Path(__file__).resolve().parents[2]

RISK = {
    "max_order_notional": 1000,
    "max_position_notional": 2000,
    "max_total_exposure": 5000,
    "max_leverage": 5,
}


def base() -> dict[str, Any]:
    return {
        "venues": {"local": {"mode": "sim", "rest_url": "http://127.0.0.1:1", "ws_url": "ws://127.0.0.1:2"}},
        "leads": [{"id": "alpha", "venue": "local", "credentials": {"api_key_env": "K", "secret_env": "S"}}],
        "followers": [
            {
                "id": "f1",
                "venue": "local",
                "credentials": {"api_key_env": "FK", "secret_env": "FS"},
                "risk": dict(RISK),
                "follows": [{"lead": "alpha", "sizing": {"mode": "multiplier", "multiplier": "0.5"}}],
            }
        ],
    }


def errors_of(data: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.yaml", **kwargs)
    return str(info.value).splitlines()


def test_minimal_config_gets_documented_defaults() -> None:
    cfg = parse_config(base())
    follower = cfg.follower("f1")
    assert follower.leverage == 5
    assert follower.margin_mode == "cross"
    assert follower.risk.slippage_bps == Decimal(50)
    assert follower.risk.min_notional_policy == "skip"
    assert cfg.reconcile.mode == "correct"
    assert cfg.api.port == 8787
    assert cfg.logging.json_output is None
    assert cfg.venue_for("f1").mode is VenueMode.SIM
    assert [f.id for f in cfg.followers_of("alpha")] == ["f1"]
    assert follower.sizing_for("alpha") is not None
    assert follower.sizing_for("alpha").multiplier == Decimal("0.5")  # type: ignore[union-attr]


def test_every_problem_is_listed_with_file_and_key_path() -> None:
    data = base()
    data["followers"][0]["risk"]["max_leverage"] = 0
    data["followers"][0]["margin_mode"] = "hedge"
    data["followers"][0]["colour"] = "blue"
    del data["followers"][0]["risk"]["max_total_exposure"]
    lines = errors_of(data)
    assert "cfg.yaml: followers[0].risk.max_leverage: must be greater than 0" in lines
    assert any(
        line.startswith("cfg.yaml: followers[0].margin_mode: must be 'cross' or 'isolated'") for line in lines
    )
    assert "cfg.yaml: followers[0].colour: unknown key" in lines
    assert "cfg.yaml: followers[0].risk.max_total_exposure: required key is missing" in lines
    assert len(lines) == 4


def test_leverage_error_is_one_clear_line() -> None:
    data = base()
    data["followers"][0]["leverage"] = 200
    assert errors_of(data) == [
        "cfg.yaml: followers[0].leverage: must be 'lead' or an integer from 1 to 125, got 200"
    ]
    data["followers"][0]["leverage"] = "lead"
    assert parse_config(data).follower("f1").leverage == "lead"


def test_yaml_floats_become_exact_decimals(tmp_path: Path) -> None:
    text = (
        (ROOT / "config" / "example.yaml").read_text().replace("portfolio_stop: 0.7", "portfolio_stop: 0.1")
    )
    path = tmp_path / "c.yaml"
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.follower("anna").risk.portfolio_stop == Decimal("0.1")
    assert str(cfg.follower("anna").risk.portfolio_stop) == "0.1"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["leads"][0].update(venue="nowhere"), "leads[0].venue: unknown venue 'nowhere'"),
        (
            lambda d: d["followers"][0].update(id="alpha"),
            "followers[0].id: duplicate id 'alpha' (also leads[0].id)",
        ),
        (
            lambda d: d["followers"][0]["follows"].append(copy.deepcopy(d["followers"][0]["follows"][0])),
            "followers[0].follows[1].lead: follower 'f1' already follows lead 'alpha'",
        ),
        (
            lambda d: d["followers"][0]["follows"][0].update(lead="beta"),
            "followers[0].follows[0].lead: unknown lead 'beta'",
        ),
        (
            lambda d: d["followers"][0]["follows"][0].update(sizing={"mode": "fixed_notional"}),
            "followers[0].follows[0].sizing.notional: required when mode is fixed_notional",
        ),
        (
            lambda d: d["followers"][0]["follows"][0].update(sizing={"mode": "allocation"}),
            "followers[0].follows[0].sizing.allocation: required when mode is allocation",
        ),
        (lambda d: d["leads"][0].update(id="has space"), "leads[0].id: "),
        (
            lambda d: d["leads"][0].update(credentials={"api_key_env": "K"}),
            "leads[0].credentials: set exactly one of secret_env or secret_file",
        ),
        (
            lambda d: d.update(api={"host": "0.0.0.0"}),
            "api.token: required when the API listens on a non-loopback address",
        ),
        (
            lambda d: d["venues"]["local"].update(mode="testnet"),
            "venues.local.rest_url: only used with mode: sim",
        ),
    ],
)
def test_cross_checks(mutate: Any, expected: str) -> None:
    data = base()
    mutate(data)
    lines = errors_of(data)
    assert any(line.startswith("cfg.yaml: " + expected) for line in lines), lines


def test_sim_venue_without_urls_needs_allow_embedded_sim() -> None:
    data = base()
    data["venues"]["local"] = {"mode": "sim"}
    assert errors_of(data) == [
        "cfg.yaml: venues.local: mode sim needs rest_url and ws_url (the local exchange's URLs)"
    ]
    cfg = parse_config(data, allow_embedded_sim=True)
    patched = cfg.with_sim_urls("local", "http://127.0.0.1:9", "ws://127.0.0.1:10")
    assert patched.venues["local"].rest_url == "http://127.0.0.1:9"
    assert cfg.venues["local"].rest_url is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("leads", 0, "credentials", "api_key"), "abcd1234"),
        (("followers", 0, "credentials", "secret"), "s3cr3t-value"),
        (("venues", "local", "options", "apiKey"), "abcd1234"),
        (("api", "token"), "tok-123456"),
        (("leads", 0, "credentials", "password"), "hunter22"),
    ],
)
def test_inline_secrets_are_refused_without_echoing_them(path: tuple[Any, ...], value: str) -> None:
    data = base()
    node: Any = data
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.yaml")
    message = str(info.value)
    rendered = ".".join(str(p) for p in path).replace(".0.", "[0].")
    assert f"cfg.yaml: {rendered}: inline secrets are refused" in message
    assert "environment variable" in message
    assert value not in message
    assert message.count("\n") == 0  # not repeated as an "unknown key" error


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("venues:\n  local: {mode: sim\nleads: []\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line 3, column \d+:"):
        load_config(path)


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("journal: {path: a}\njournal: {path: b}\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: line 2, column 1: duplicate key 'journal'"):
        load_config(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_config(tmp_path / "empty.yaml")


def test_shipped_configs_load() -> None:
    example = load_config(ROOT / "config" / "example.yaml")
    assert example.venues["binance-testnet"].mode is VenueMode.TESTNET
    modes = {f.id: f.follows[0].sizing.mode for f in example.followers}
    assert len(set(modes.values())) == 2
    demo = load_config(ROOT / "config" / "demo.yaml", allow_embedded_sim=True)
    assert demo.venues["local"].mode is VenueMode.SIM
    assert len(demo.leads) == 1
    assert len({f.follows[0].sizing.mode for f in demo.followers}) == 3


def test_credentials_resolve_from_the_given_env_and_relative_files(tmp_path: Path) -> None:
    clear_secrets()
    (tmp_path / "ben.key").write_text("ben-key-value\n")
    (tmp_path / "ben.secret").write_text("ben-secret-value")
    for name in ("ben.key", "ben.secret"):
        (tmp_path / name).chmod(0o600)
    config_path = tmp_path / "example.yaml"
    config_path.write_text((ROOT / "config" / "example.yaml").read_text())
    env = {"LEAD_ALPHA_API_KEY": "lead-key-1", "LEAD_ALPHA_SECRET": "lead-secret-1"}
    cfg = load_config(config_path, env=env)
    lead = cfg.credentials_for("alpha")
    assert (lead.api_key, lead.secret) == ("lead-key-1", "lead-secret-1")
    ben = cfg.credentials_for("ben")
    assert (ben.api_key, ben.secret) == ("ben-key-value", "ben-secret-value")
    assert {"lead-secret-1", "ben-secret-value"} <= known_secrets()
    with pytest.raises(
        SecretError, match=r"followers\[anna\]\.credentials\.api_key_env: .*FOLLOWER_ANNA_API_KEY"
    ):
        cfg.credentials_for("anna")
    with pytest.raises(SecretError, match="COPYBOT_API_TOKEN"):
        cfg.api_token()
    clear_secrets()


def test_notification_urls_are_secrets_resolved_with_their_severity(tmp_path: Path) -> None:
    clear_secrets()
    data = base()
    data["alerts"] = {
        "notify": [{"url": {"env": "TG_URL"}}, {"url": {"env": "PAGER_URL"}, "min_severity": "critical"}],
        "daily_summary_utc": "21:30",
    }
    url = "tgram://123456:AAbotTOKENvalue/-100987654"
    cfg = parse_config(data, "cfg.yaml", env={"TG_URL": url, "PAGER_URL": "ntfy://pager-topic-x1"})
    assert cfg.notify_urls() == [(url, "warning"), ("ntfy://pager-topic-x1", "critical")]
    assert cfg.alerts.daily_summary_utc == "21:30"
    assert {url, "123456:AAbotTOKENvalue", "-100987654"} <= known_secrets()  # the whole URL and its parts
    with pytest.raises(
        SecretError, match="alerts.notify\\[1\\].url.env: environment variable PAGER_URL is not set"
    ):
        parse_config(data, "cfg.yaml", env={"TG_URL": url}).notify_urls()
    clear_secrets()


def test_a_literal_notification_url_is_refused_without_echoing_it() -> None:
    data = base()
    data["alerts"] = {"notify": [{"url": "discord://1234/webhook-token-zz9"}]}
    (line,) = errors_of(data)
    assert line.startswith("cfg.yaml: alerts.notify[0].url: inline secrets are refused")
    assert "webhook-token-zz9" not in line
    data["alerts"] = {"notify": [{"url": {"env": "X"}, "min_severity": "loud"}], "daily_summary_utc": "24:00"}
    problems = errors_of(data)
    assert len(problems) == 2
    assert "cfg.yaml: alerts.notify[0].min_severity: must be 'info', 'warning' or 'critical'" in problems
    assert any(p.startswith("cfg.yaml: alerts.daily_summary_utc: ") for p in problems)
