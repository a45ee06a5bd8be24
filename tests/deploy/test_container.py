"""Dockerfile and compose.yaml: they parse, run copybot as an unprivileged user on a read-only root
(state in a volume, HOME and /tmp writable), and carry no secret. Docker itself is not needed:
the files are read, not built."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from bot.core.redaction import SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in stage:
        if word == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(rest))  # type: ignore[misc]
    return env


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def is_secret_name(name: str) -> bool:
    return bool(SECRET_KEY.search(name.lower().replace("_", "").replace("-", "")))


def test_dockerfile_runs_as_an_unprivileged_user_with_state_in_a_volume() -> None:
    stage = final_stage()
    users = [rest for word, rest in stage if word == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert int(user) >= 1000
    env = env_of(stage)
    (volume,) = [rest for word, rest in stage if word == "VOLUME"]
    assert env["STATE_DIRECTORY"] in volume  # the journal goes to the volume (bot/service/app.py)
    assert env["HOME"] == "/tmp"  # a writable path on a read-only root (compose mounts a tmpfs)
    assert env["CREDENTIALS_DIRECTORY"] == "/run/secrets"  # relative *_file credentials, as compose mounts
    entry = [rest for word, rest in stage if word == "ENTRYPOINT"]
    assert entry == ['["copybot"]']


def test_no_secret_is_baked_into_the_image() -> None:
    steps = instructions()
    for word, rest in steps:
        if word in ("ENV", "ARG"):
            for part in shlex.split(rest):
                name = part.split("=", 1)[0]
                assert name == "CREDENTIALS_DIRECTORY" or not is_secret_name(name), part
        if word in ("COPY", "ADD"):
            sources = shlex.split(rest)[:-1]
            assert not any(re.search(r"secret|credential|\.env|\.key|token", s) for s in sources), rest
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in ("secrets/", "*.env", ".venv", "*.sqlite", ".git"):
        assert pattern in ignored


def test_compose_runs_the_daemon_read_only_and_unprivileged_with_optional_redis() -> None:
    services = compose()["services"]
    daemon = services["copybot"]
    assert daemon["read_only"] is True
    assert int(daemon["user"].split(":")[0]) >= 1000
    assert any(t.split(":")[0] == "/tmp" for t in daemon["tmpfs"])
    mounts = {v.split(":")[1]: v for v in daemon["volumes"]}
    assert mounts["/var/lib/copybot"].startswith("copybot-state:")
    assert mounts["/etc/copybot/config.yaml"].endswith(":ro")
    assert daemon["cap_drop"] == ["ALL"]
    assert all(p.startswith("127.0.0.1:") for p in daemon["ports"])  # the API on the host's loopback
    assert daemon["stop_grace_period"] == "60s"
    assert "profiles" not in daemon
    assert services["redis"]["profiles"] == ["redis"]
    assert set(compose()["volumes"]) == {"copybot-state", "redis-data"}


def test_compose_passes_secrets_as_files_never_as_values() -> None:
    data = compose()
    for name, service in data["services"].items():
        environment = service.get("environment") or {}
        items = (
            environment.items() if isinstance(environment, dict) else (e.split("=", 1) for e in environment)
        )
        for key, *value in items:
            assert not (is_secret_name(key) and value and value[0]), f"{name}: {key} has a literal value"
    for secret in data["secrets"].values():
        assert set(secret) == {"file"}
        assert secret["file"].startswith("./secrets/")
    assert set(data["services"]["copybot"]["secrets"]) == set(data["secrets"])
