"""The `copybot` entry point, run as a user runs it (the installed console script, a subprocess):
each expected failure is one line on stderr, no traceback, and a non-zero exit status."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.service.api import CONTROL_DISABLED
from tests.integration.harness import Harness, follower

COPYBOT = str(Path(sys.executable).with_name("copybot"))


def copybot(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    proc = subprocess.run(
        [COPYBOT, *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    return proc.returncode, proc.stdout, proc.stderr


def one_line(stderr: str, prefix: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on loopback nobody answers on: a taken port, or a venue that must not be
    contacted (a connection would wait in its backlog)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp: Path, venue_port: int, api_port: int = 0) -> Path:
    base = f"127.0.0.1:{venue_port}"
    data: dict[str, Any] = {
        "venues": {"v": {"exchange": "binanceusdm", "mode": "sim", "rest_url": f"http://{base}",
                         "ws_url": f"ws://{base}", "timeout_ms": 2000}},
        "leads": [{"id": "lead", "venue": "v",
                   "credentials": {"api_key_env": "T_LEAD_KEY", "secret_env": "T_LEAD_SECRET"}}],
        "followers": [{
            "id": "f", "venue": "v", "credentials": {"api_key_env": "T_F_KEY", "secret_env": "T_F_SECRET"},
            "risk": {"max_order_notional": 1000, "max_position_notional": 1000, "max_total_exposure": 1000,
                     "max_leverage": 5},
            "follows": [{"lead": "lead", "sizing": {"mode": "multiplier", "multiplier": 1}}],
        }],
        "journal": {"path": str(tmp / "journal.sqlite")},
        "api": {"enabled": True, "port": api_port},
    }  # fmt: skip
    path = tmp / "copybot.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


CREDS = {"T_LEAD_KEY": "k1", "T_LEAD_SECRET": "s1", "T_F_KEY": "k2", "T_F_SECRET": "s2"}


def test_venue_unreachable_at_start(tmp_path: Path) -> None:
    code, _, err = copybot("run", "--config", str(write_config(tmp_path, closed_port())), env=CREDS)
    line = one_line(err, "copybot run: a venue could not be reached at start: ")
    assert "rest_url" in line
    assert code == 1


def test_api_port_already_taken(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with socket.socket() as venue:  # a venue nobody answers on: a connection would wait in its backlog
        venue.bind(("127.0.0.1", 0))
        venue.listen(8)
        venue.setblocking(False)
        config = write_config(tmp_path, venue.getsockname()[1], api_port=port)
        code, _, err = copybot("run", "--config", str(config), env=CREDS)
        line = one_line(err, "copybot run: the API port ")
        assert f"127.0.0.1:{port} is already in use" in line
        assert code == 1
        with pytest.raises(BlockingIOError):
            venue.accept()  # refused before any venue was tried


def test_missing_credentials_are_found_before_any_network_call(
    tmp_path: Path, listener: socket.socket
) -> None:
    config = write_config(tmp_path, listener.getsockname()[1])
    env = {k: v for k, v in CREDS.items() if k != "T_F_SECRET"}
    os_env = {k: v for k, v in os.environ.items() if k != "T_F_SECRET"}
    proc = subprocess.run([COPYBOT, "run", "--config", str(config)], capture_output=True, text=True,
                          timeout=60, env={**os_env, **env})  # fmt: skip
    line = one_line(proc.stderr, "copybot run: credentials: ")
    assert "T_F_SECRET is not set" in line
    assert proc.returncode == 2
    with pytest.raises(BlockingIOError):
        listener.accept()  # the venue was never contacted


def test_aum_on_a_journal_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "var" / "journal.sqlite"
    code, out, err = copybot("aum", "--journal", str(missing))
    line = one_line(err, "copybot aum: no journal at ")
    assert str(missing) in line
    assert (code, out) == (1, "")
    assert not missing.exists()
    assert not missing.parent.exists()


def test_plot_without_its_extra_names_the_extra(tmp_path: Path) -> None:
    # matplotlib hidden from the interpreter, as on an install without the plot extra.
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoMatplotlib:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _NoMatplotlib())\n"
    )
    code, _, err = copybot("aum", "--journal", str(tmp_path / "j.sqlite"), "--plot", str(tmp_path / "a.png"),
                           env={"PYTHONPATH": str(tmp_path)})  # fmt: skip
    line = one_line(err, "copybot aum: --plot needs matplotlib")
    assert "pip install 'copybot[plot]'" in line
    assert code == 1


def test_aum_period_is_checked_before_anything_is_read(tmp_path: Path) -> None:
    journal = str(tmp_path / "j.sqlite")
    code, _, err = copybot("aum", "--journal", journal, "--period", "7 days")
    assert "use a number and a unit" in one_line(err, "copybot aum: --period: period '7 days'")
    assert code == 2
    code, _, err = copybot("aum", "--journal", journal, "--periods", "0")
    one_line(err, "copybot aum: --periods: a whole number from 1 to 366")
    assert code == 2


def test_control_without_a_token_given(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COPYBOT_API_TOKEN", "CREDENTIALS_DIRECTORY")}
    api = f"http://127.0.0.1:{closed_port()}"
    proc = subprocess.run(
        [COPYBOT, "halt", "--api", api], capture_output=True, text=True, timeout=30, env=env
    )
    one_line(proc.stderr, "copybot halt: no API token given: set COPYBOT_API_TOKEN or pass --token-file")
    assert proc.returncode == 1


def test_daemon_not_running() -> None:
    code, _, err = copybot("status", "--api", f"http://127.0.0.1:{closed_port()}")
    one_line(err, "copybot status: cannot reach the daemon at http://127.0.0.1:")
    assert code == 1


async def test_control_disabled_because_the_daemon_has_no_token(harness: Harness) -> None:
    # A real daemon whose config has no api.token: control is disabled, not "wrong token".
    harness.build_config([follower("f1", {"mode": "multiplier", "multiplier": "0.1"})])
    await harness.start_daemon()
    assert harness.daemon is not None
    port = harness.daemon.bound_api_port
    proc = await asyncio.create_subprocess_exec(
        COPYBOT, "reduce-only", "--api", f"http://127.0.0.1:{port}", "--follower", "f1",
        env={**os.environ, "COPYBOT_API_TOKEN": "some-token-value"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    line = one_line(err.decode(), "copybot reduce-only: control is disabled: ")
    assert line == f"copybot reduce-only: {CONTROL_DISABLED}"
    assert (proc.returncode, out) == (1, b"")
    assert harness.engine.followers["f1"].state.value == "ACTIVE"  # nothing changed


def test_check_config_on_the_demo_layout_says_how_to_run_it() -> None:
    demo = str(Path(__file__).resolve().parents[2] / "config" / "demo.yaml")
    code, out, err = copybot("check-config", "--config", demo)
    assert (code, err) == (0, "")
    assert "valid as the demo's layout (1 lead(s), 3 follower(s))" in out
    assert f"Run it with: copybot demo --config {demo}" in out
    code, _, err = copybot("check-config", "--config", demo, "--connect")
    one_line(err, "copybot check-config: --connect needs venues with URLs")
    assert code == 1


def test_help_imports_nothing_heavy_and_each_control_command_has_only_its_options() -> None:
    code, out, _ = copybot("--help")
    assert code == 0
    assert "reduce-only" in out
    # Fast because nothing heavy is imported for --help, nor for a control command.
    heavy = "('ccxt', 'pydantic', 'aiohttp', 'bot.live')"
    probe = ("import sys; from bot.cli import build_parser; build_parser({argv}); "
             f"print(sorted(m for m in {heavy} if m in sys.modules))")  # fmt: skip
    for argv in (["--help"], ["status"], ["halt"]):
        run = subprocess.run([sys.executable, "-c", probe.format(argv=argv)], capture_output=True, text=True)
        assert run.stdout.strip() == "[]", (argv, run.stdout, run.stderr)
    code, out, _ = copybot("--version")
    assert (code, out.split()[0]) == (0, "copybot")
    _, status_help, _ = copybot("status", "--help")
    _, halt_help, _ = copybot("halt", "--help")
    assert "--json" in status_help
    assert "show this follower's results" in status_help  # status --follower: its PnL table
    assert "--reason" not in status_help
    assert "needed only beyond loopback" in status_help
    assert "--follower" in halt_help
    assert "--token-file" in halt_help
    assert "--json" not in halt_help
    assert "Halt a running daemon" in halt_help


def test_demo_on_a_missing_or_non_demo_config(tmp_path: Path) -> None:
    code, _, err = copybot("demo", "--config", str(tmp_path / "nope.yaml"), "--seconds", "1")
    one_line(err, f"copybot demo: invalid config: {tmp_path / 'nope.yaml'}: cannot read")
    assert code == 2
    config = write_config(tmp_path, closed_port())  # venues with URLs: a daemon's config, not a demo layout
    code, _, err = copybot("demo", "--config", str(config), "--seconds", "1")
    one_line(err, f"copybot demo: --config {config}: the demo runs on its own local exchange")
    assert code == 2


def test_an_api_that_is_not_a_url() -> None:
    for command in ("status", "aum"):
        code, _, err = copybot(command, "--api", "localhost:8787")
        one_line(err, f"copybot {command}: --api localhost:8787: expected an http:// or https:// URL")
        assert code == 1
