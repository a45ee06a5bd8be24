"""The `cluster:` section: absent means one process; the URL never carries the password, which
comes from the environment or a file like every other secret; lease timings that cannot hold are
refused. And a single process never imports the Redis client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.config.models import ConfigError, parse_config
from bot.core.redaction import clear_secrets, known_secrets
from tests.unit.test_config import base


def with_cluster(**cluster: Any) -> dict[str, Any]:
    data = base()
    data["cluster"] = {"redis_url": "redis://10.0.0.5:6379/0", "id": "shard-a", **cluster}
    return data


def test_absent_cluster_is_one_process() -> None:
    config = parse_config(base())
    assert config.cluster is None
    assert config.redis_password() is None


def test_documented_defaults() -> None:
    cluster = parse_config(with_cluster()).cluster
    assert cluster is not None
    assert (cluster.key_prefix, cluster.lease_ttl_s, cluster.stream_maxlen, cluster.claim_idle_s) == (
        "copybot",
        5,
        100_000,
        10,
    )
    assert cluster.renew_every_s == pytest.approx(5 / 3)
    assert cluster.password is None
    assert cluster.username is None


def test_password_resolves_from_env_and_is_registered_for_redaction() -> None:
    clear_secrets()
    config = parse_config(with_cluster(password={"env": "REDIS_PW"}), env={"REDIS_PW": "s3cr3t-pw"})
    assert config.redis_password() == "s3cr3t-pw"
    assert "s3cr3t-pw" in known_secrets()


def test_password_resolves_from_an_owner_only_file(tmp_path: Path) -> None:
    secret = tmp_path / "redis.pw"
    secret.write_text("file-pw\n")
    secret.chmod(0o600)
    config = parse_config(with_cluster(password={"file": str(secret)}), env={})
    assert config.redis_password() == "file-pw"


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        ({"redis_url": "redis://:hunter2@10.0.0.5:6379"}, "cluster.redis_url: "),
        ({"redis_url": "http://10.0.0.5:6379"}, "must be a redis://, rediss:// or unix:// URL"),
        ({"password": "hunter2"}, "cluster.password: inline secrets are refused"),
        ({"id": "has space"}, "cluster.id: "),
        ({"lease_ttl_s": 0.1}, "cluster.lease_ttl_s: "),
        ({"lease_ttl_s": 3, "lease_renew_s": 2}, "must be at most half of lease_ttl_s"),
        ({"stream_maxlen": 10}, "cluster.stream_maxlen: "),
        ({"unknown": 1}, "cluster.unknown: "),
    ],
)
def test_bad_cluster_sections_are_refused_with_the_key(cluster: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(with_cluster(**cluster))
    assert expected in str(err.value)
    assert "hunter2" not in str(err.value)


def test_a_single_process_never_imports_redis() -> None:
    code = (
        "import sys, bot.cli, bot.service.app, bot.commands.run, bot.commands.demo\n"
        "assert 'redis' not in sys.modules, sorted(m for m in sys.modules if m.startswith('redis'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
