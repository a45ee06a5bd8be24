"""Logging: JSON lines with context, and secrets that never reach the output whichever way they
travel (event text, nested values, exceptions, URLs, stdlib loggers)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest
import structlog

from bot.core.redaction import clear_secrets, register_secret
from bot.core.types import Credentials
from bot.service.logs import bind_context, configure_logging, get_logger, redact_text, reset_logging

SECRET = "Zq8sK2mPp0vN5tXr"  # registered: must never be printed
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    clear_secrets()
    register_secret(SECRET)
    stream = io.StringIO()
    configure_logging("debug", json=True, stream=stream)
    yield stream
    structlog.contextvars.clear_contextvars()
    clear_secrets()
    reset_logging()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_level_timestamp_and_bound_context(out: io.StringIO) -> None:
    log = get_logger("executor", follower="f1")
    log.bind(client_order_id="cb-1").info("order sent", qty=Decimal("0.010"), symbol="BTC/USDT:USDT")
    (line,) = lines(out)
    assert list(line)[:3] == ["timestamp", "level", "event"]
    assert line["event"] == "order sent"
    assert line["level"] == "info"
    assert str(line["timestamp"]).endswith("Z")
    assert line["component"] == "executor"
    assert (line["follower"], line["client_order_id"], line["qty"]) == ("f1", "cb-1", "0.010")


def test_level_filter(out: io.StringIO) -> None:
    configure_logging("warning", json=True, stream=out)
    log = get_logger("x")
    log.info("hidden")
    log.warning("shown")
    assert [line["event"] for line in lines(out)] == ["shown"]


def test_module_level_logger_follows_later_configuration(out: io.StringIO) -> None:
    log = get_logger("early")  # created before the reconfiguration below
    other = io.StringIO()
    configure_logging("info", json=True, stream=other)
    log.info("late")
    assert out.getvalue() == ""
    assert lines(other)[0]["event"] == "late"


def test_contextvars_are_merged_and_unbound(out: io.StringIO) -> None:
    unbind = bind_context(lead="alpha", trade_id="t-9")
    get_logger("feed").info("fill")
    unbind()
    get_logger("feed").info("after")
    first, second = lines(out)
    assert (first["lead"], first["trade_id"]) == ("alpha", "t-9")
    assert "lead" not in second


def test_registered_secret_is_scrubbed_everywhere(out: io.StringIO) -> None:
    log = get_logger("t", follower="f1")
    log.info(f"event text {SECRET}")
    log.info("nested", detail={"a": [f"x{SECRET}y", {"b": (SECRET,)}]})
    log.info("url", url=f"http://127.0.0.1:1/fapi/v1/account?key={SECRET}&timestamp=1")
    log.info("object", creds=Credentials(api_key=SECRET, secret=SECRET), err=ValueError(f"with {SECRET}"))
    try:
        raise RuntimeError(f"exchange said: bad key {SECRET}")
    except RuntimeError:
        log.exception("failed")
    text = out.getvalue()
    assert SECRET not in text
    assert text.count("***") >= 6
    assert len(lines(out)) == 5


def test_url_encoded_secret_is_scrubbed(out: io.StringIO) -> None:
    register_secret("ab/cd+ef==gh")
    get_logger("t").info("call", url="http://127.0.0.1:1/x?token=1&k=ab%2Fcd%2Bef%3D%3Dgh")
    assert "ab%2Fcd%2Bef%3D%3Dgh" not in out.getvalue()


def test_secret_named_keys_are_masked(out: io.StringIO) -> None:
    get_logger("t").info(
        "request",
        apiKey="plainvalue1",
        headers={"X-MBX-APIKEY": "plainvalue2", "Content-Type": "application/json"},
        params={"listenKey": "plainvalue3", "signature": "plainvalue4", "symbol": "BTCUSDT"},
        password="plainvalue5",
        token=None,
    )
    (line,) = lines(out)
    text = json.dumps(line)
    for i in range(1, 6):
        assert f"plainvalue{i}" not in text
    assert line["headers"] == {"X-MBX-APIKEY": "***", "Content-Type": "application/json"}
    assert line["params"]["symbol"] == "BTCUSDT"  # type: ignore[index]
    assert line["token"] is None


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        (
            "GET /fapi/v1/order?symbol=BTCUSDT&timestamp=1&signature=9f86d081884c7d659a2feaa0c55ad015",
            "9f86d08",
        ),
        ("headers {'X-MBX-APIKEY': 'shortish-key'}", "shortish-key"),
        ('binanceusdm {"code":-2015,"msg":"Invalid API-key"} apiKey=' + API_KEY, API_KEY),
        ("wss://fstream.binance.com/ws/" + API_KEY, API_KEY),
        ("Authorization: Bearer s3cr3t-token-value", "s3cr3t-token-value"),
    ],
)
def test_secret_looking_substrings_are_scrubbed(text: str, leaked: str) -> None:
    assert leaked not in redact_text(text)


def test_ordinary_text_is_left_alone() -> None:
    text = "order cb-alpha-f1-123456789-0 filled 0.010 BTC/USDT:USDT at 65000.5 (orderId 8389765512345)"
    assert redact_text(text) == text


def test_stdlib_loggers_are_redacted_too(out: io.StringIO) -> None:
    logging.getLogger("ccxt.test").warning("request failed for key %s", SECRET)
    (line,) = lines(out)
    assert line["component"] == "ccxt.test"
    assert SECRET not in json.dumps(line)


def test_console_renderer_when_not_json() -> None:
    stream = io.StringIO()
    configure_logging("info", json=False, stream=stream)
    get_logger("t").info("hello", follower="f1")
    text = stream.getvalue()
    assert "hello" in text
    assert "follower=f1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    auto = io.StringIO()
    configure_logging("info", json=None, stream=auto)  # a StringIO is not a terminal: JSON
    get_logger("t").info("auto")
    assert json.loads(auto.getvalue())["event"] == "auto"
    reset_logging()


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="logging.level"):
        configure_logging("loud", stream=io.StringIO())
    assert not any(type(h).__name__ == "_StdlibHandler" for h in logging.getLogger().handlers)
