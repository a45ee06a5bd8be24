"""deploy/copybot.service and the cluster templates (copybot-feed@.service, copybot-shard@.service):
systemd accepts them, rates their hardening OK, the templates keep the single unit's hardening and
lifecycle line for line, and the hardening does not break the daemon's runtime.

`systemd-analyze verify` insists that ExecStart's binary exists. The unit names the production
path /opt/copybot/venv/bin/copybot, which a development machine does not have, so the verify test
checks a copy whose ExecStart points at the `copybot` found on PATH (else this Python); nothing
else in the copy changes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.config.models import ExecutorConfig
from bot.service.alerts import AlertSink

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "copybot.service"
TEMPLATES = {"feed": DEPLOY / "copybot-feed@.service", "shard": DEPLOY / "copybot-shard@.service"}
ALL_UNITS = [UNIT, *TEMPLATES.values()]
PROD_EXEC = "/opt/copybot/venv/bin/copybot"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (apt-get install systemd)"
)


def directives(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections to (key, value) lists; systemd allows a key to repeat, so no dict per section."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(section: str, key: str, unit: Path = UNIT) -> list[str]:
    return [v for k, v in directives(unit.read_text())[section] if k == key]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value)
    assert match, f"unexpected time span {value!r}"
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


@needs_systemd_analyze
@pytest.mark.parametrize("unit", ALL_UNITS, ids=lambda u: u.name)
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path, unit: Path) -> None:
    """A template is verified as systemd loads it, instantiated (as `<name>@i.service`); unknown or
    misspelt keys are warnings naming the file, so stderr must not mention it."""
    text = unit.read_text()
    assert f"ExecStart={PROD_EXEC} " in text
    binary = shutil.which("copybot") or sys.executable
    copy = tmp_path / unit.name
    copy.write_text(text.replace(f"ExecStart={PROD_EXEC} ", f"ExecStart={binary} "))
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert unit.name.split("@")[0].removesuffix(".service") not in result.stderr, result.stderr


@needs_systemd_analyze
@pytest.mark.parametrize("unit", ALL_UNITS, ids=lambda u: u.name)
def test_security_exposure_is_ok_or_better(unit: Path) -> None:
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert match, f"no exposure line in:\n{result.stdout[-2000:]}"
    score, rating = float(match.group(1)), match.group(2)
    print(f"systemd-analyze security: {score} {rating}")
    assert score <= 2.0, result.stdout
    assert rating in {"OK", "SAFE"}


def test_service_lifecycle_directives() -> None:
    assert values("Service", "Type") == ["notify"]
    assert values("Service", "NotifyAccess") == ["main"]
    assert values("Service", "WatchdogSec") == ["30"]
    assert values("Service", "Restart") == ["on-failure"]
    assert values("Service", "KillSignal") == ["SIGTERM"]
    assert values("Unit", "StartLimitIntervalSec")
    assert values("Unit", "StartLimitBurst")
    assert values("Service", "ExecStart") == [f"{PROD_EXEC} run --config /etc/copybot/config.yaml"]
    assert values("Service", "ExecReload") == ["/bin/kill -HUP $MAINPID"]  # config reload: SIGHUP


# What a template may set its own way: the command, its state and secrets, and the texts.
PER_INSTANCE = {"Description", "Documentation", "After", "ExecStart", "StateDirectory", "WorkingDirectory",
                "LoadCredential", "EnvironmentFile"}  # fmt: skip


@pytest.mark.parametrize("role", TEMPLATES)
def test_templates_keep_the_single_units_hardening_and_lifecycle(role: str) -> None:
    single, template = directives(UNIT.read_text()), directives(TEMPLATES[role].read_text())
    assert set(template) == set(single)
    for section, rows in single.items():
        kept = sorted((k, v) for k, v in rows if k not in PER_INSTANCE)
        assert sorted((k, v) for k, v in template[section] if k not in PER_INSTANCE) == kept, section
    # Ordering after a Redis on the same host; the rest of [Unit] "After" is the single unit's.
    (after,) = values("Unit", "After", TEMPLATES[role])
    assert after.split() == [*values("Unit", "After")[0].split(), "redis-server.service"]


@pytest.mark.parametrize(
    ("role", "exec_start"),
    [
        ("feed", f"{PROD_EXEC} run --role feed --config /etc/copybot/feed-%i.yaml"),
        ("shard", f"{PROD_EXEC} run --role shard --shard-id %i --config /etc/copybot/shard-%i.yaml"),
    ],
)
def test_templates_run_one_role_per_instance(role: str, exec_start: str) -> None:
    unit = TEMPLATES[role]
    assert values("Service", "ExecStart", unit) == [exec_start]
    # Each instance has its own journal and its own config, in the shared config folder.
    assert values("Service", "StateDirectory", unit) == [f"copybot-{role}-%i"]
    assert values("Service", "WorkingDirectory", unit) == [f"/var/lib/copybot-{role}-%i"]
    assert values("Service", "ConfigurationDirectory", unit) == ["copybot"]
    assert values("Service", "EnvironmentFile", unit) == [
        "-/etc/copybot/copybot.env",
        f"-/etc/copybot/{role}-%i.env",
    ]
    creds = dict(v.split(":", 1) for v in values("Service", "LoadCredential", unit))
    assert all(path.startswith("/etc/copybot/credentials/") for path in creds.values())
    assert {"redis-password", "api-token"} <= set(creds)
    # A feed never holds a follower's key; every shard holds them all (it may take any over) and no
    # lead's (the feed publishes the leads' positions).
    assert ("followers" in creds) is (role == "shard")
    assert ("leads" in creds) is (role == "feed")


@pytest.mark.parametrize("role", TEMPLATES)
def test_template_command_lines_parse_as_copybot_run(role: str) -> None:
    """The contract with `copybot run`: `--role feed|shard|all [--shard-id ID] --config PATH`."""
    from bot.commands import run

    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    if "--role" not in parser._option_string_actions:
        pytest.skip("this copybot run has no --role yet (cluster roles not wired)")
    (exec_start,) = values("Service", "ExecStart", TEMPLATES[role])
    argv = exec_start.replace("%i", "a").split()
    assert argv[:2] == [PROD_EXEC, "run"]
    args = parser.parse_args(argv[2:])
    assert args.role == role
    assert args.config == f"/etc/copybot/{role}-a.yaml"
    if role == "shard":
        assert args.shard_id == "a"


def test_stop_timeout_leaves_room_for_the_drain() -> None:
    # SIGKILL must not land while orders are still draining or alerts are being flushed.
    drain = float(ExecutorConfig().drain_timeout_s)
    alerts_flush = AlertSink(None)._stop_timeout_s
    (stop_timeout,) = values("Service", "TimeoutStopSec")
    assert seconds(stop_timeout) > drain + alerts_flush


def test_secrets_and_state_directories() -> None:
    assert values("Service", "StateDirectory") == ["copybot"]
    assert values("Service", "ConfigurationDirectory") == ["copybot"]
    assert values("Service", "UMask") == ["0077"]
    creds = dict(v.split(":", 1) for v in values("Service", "LoadCredential"))
    assert {"lead-api-key", "lead-secret", "api-token"} <= set(creds)  # api-token: bot/commands/control.py
    assert all(path.startswith("/etc/copybot/credentials/") for path in creds.values())
    assert values("Service", "EnvironmentFile") == ["-/etc/copybot/copybot.env"]


def test_network_is_limited_to_what_the_daemon_uses() -> None:
    (families,) = values("Service", "RestrictAddressFamilies")
    assert set(families.split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}  # AF_UNIX: the notify socket
    assert "PrivateNetwork" not in dict(directives(UNIT.read_text())["Service"])


MDWE_PROBE = textwrap.dedent(
    """
    import asyncio, ctypes, mmap, sqlite3, sys
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(77)
    import aiohttp, ccxt.async_support, ccxt.pro, pydantic, structlog, tenacity, yaml
    from aiohttp import web
    import bot.service.alerts, bot.config.models, bot.service.sdnotify, bot.venues.clients

    async def main():
        app = web.Application()
        async def ok(request):
            return web.json_response({"ok": True})
        app.router.add_get("/", ok)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                assert (await response.json()) == {"ok": True}
        exchange = bot.venues.clients.make_pro("binanceusdm", bot.venues.clients.VenueMode.SIM,
                                      rest_url=f"http://127.0.0.1:{port}", ws_url="ws://127.0.0.1:1",
                                      api_key="k", secret="s")
        await exchange.close()
        await runner.cleanup()

    asyncio.run(main())
    sqlite3.connect(":memory:").execute("select 1")
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:
        print("MDWE active, runtime fine")
    else:
        sys.exit("W+X mapping allowed: the restriction was not in force")
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_MDWE is Linux-only")
def test_runtime_works_under_memory_deny_write_execute() -> None:
    """MemoryDenyWriteExecute=yes is only safe if CPython and the C extensions we load never map
    writable+executable memory. The kernel's PR_SET_MDWE (6.3+) enforces the same rule in-process;
    the probe imports the stack, serves and makes HTTP calls, builds a ccxt client, then proves the
    restriction is active by failing to map W+X memory."""
    result = subprocess.run(
        [sys.executable, "-c", MDWE_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=UNIT.parents[1],
    )
    if result.returncode == 77:
        pytest.skip("kernel has no PR_SET_MDWE (needs Linux 6.3+)")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MDWE active, runtime fine" in result.stdout
