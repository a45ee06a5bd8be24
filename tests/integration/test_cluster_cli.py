"""`copybot run --role` as a user runs it: a role without a `cluster:` section, `--shard-id` on a
single process, and Redis unreachable are each one line on stderr, before any venue is contacted."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.integration.test_cli_errors import CREDS, closed_port, copybot, one_line, write_config


def test_a_role_needs_the_cluster_section(tmp_path: Path) -> None:
    config = write_config(tmp_path, closed_port())
    code, _, err = copybot("run", "--config", str(config), "--role", "shard", env=CREDS)
    assert "needs a cluster: section" in one_line(err, "copybot run: --role shard ")
    assert code == 2
    code, _, err = copybot("run", "--config", str(config), "--shard-id", "s1", env=CREDS)
    one_line(err, "copybot run: --shard-id needs --role feed or --role shard")
    assert code == 2


def test_redis_unreachable_is_one_line_before_any_venue_is_contacted(tmp_path: Path) -> None:
    config = write_config(tmp_path, closed_port())
    data = yaml.safe_load(config.read_text())
    data["cluster"] = {"redis_url": f"redis://127.0.0.1:{closed_port()}/0", "id": "shard-a"}
    config.write_text(yaml.safe_dump(data))
    code, _, err = copybot("run", "--config", str(config), "--role", "shard", "--shard-id", "s-2", env=CREDS)
    line = one_line(err, "copybot run: cluster: Redis at redis://127.0.0.1:")
    assert "did not answer" in line
    assert code == 1
    assert not (tmp_path / "journal.shard-s-2.sqlite").exists()
