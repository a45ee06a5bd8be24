"""Pieces of the cluster roles that need no Redis: which followers still owe a fill (the shard
acknowledges only when none does), the per-role journal file, `--shard-id`, shard timings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.config.models import ConfigError, parse_config
from bot.live.settlement import Settlements
from bot.service.app import journal_path
from tests.unit.test_cluster_config import with_cluster
from tests.unit.test_config import base


async def test_a_fill_is_settled_once_every_follower_it_went_to_has_disposed_of_it() -> None:
    s = Settlements()
    s.submitted("t1", ["a", "b", "c"])
    waiting = asyncio.create_task(s.wait("t1", lambda: ["a", "b"], timeout_s=5))
    await asyncio.sleep(0.01)
    s.disposed("a", ["t1"])
    await asyncio.sleep(0.01)
    assert not waiting.done()
    s.disposed("b", ["t1"])
    assert await waiting  # "c" is another partition's: not waited for
    assert s.owed("t1", ["a", "b", "c"]) == {"c"}


async def test_a_follower_the_fill_never_went_to_owes_nothing() -> None:
    s = Settlements()
    s.submitted("t1", ["a"])
    assert await s.wait("t1", lambda: ["joined-later"], timeout_s=0.1)
    assert await s.wait("never-fanned-out", lambda: ["a"], timeout_s=0.1)


async def test_unsettled_times_out_unless_excused_or_forgotten() -> None:
    s = Settlements()
    s.submitted("t1", ["a", "b"])
    assert not await s.wait("t1", lambda: ["a", "b"], timeout_s=0.05)
    assert await s.wait("t1", lambda: ["a", "b"], timeout_s=0.05, excused=lambda f: True)
    s.forget("a")
    s.forget("b")
    assert s.owed("t1", ["a", "b"]) == set()


def test_tracking_is_bounded() -> None:
    s = Settlements(max_tracked=3)
    for i in range(10):
        s.submitted(f"t{i}", ["a"])
    assert s.owed("t0", ["a"]) == set()
    assert s.owed("t9", ["a"]) == {"a"}


def test_a_cluster_role_keeps_its_own_journal_file(tmp_path: Path) -> None:
    data = with_cluster()
    data["journal"] = {"path": str(tmp_path / "copybot.sqlite")}
    cfg = parse_config(data)
    assert journal_path(cfg) == tmp_path / "copybot.sqlite"
    assert journal_path(cfg, "shard") == tmp_path / "copybot.shard-shard-a.sqlite"
    assert journal_path(cfg, "feed") == tmp_path / "copybot.feed-shard-a.sqlite"
    assert journal_path(cfg.with_cluster_id("shard-b"), "shard") == tmp_path / "copybot.shard-shard-b.sqlite"


def test_shard_id_replaces_the_cluster_id_and_must_be_an_id() -> None:
    cfg = parse_config(with_cluster())
    assert cfg.with_cluster_id("shard-7").cluster.id == "shard-7"  # type: ignore[union-attr]
    assert cfg.cluster is not None
    assert cfg.cluster.id == "shard-a"
    for bad in ("has:colon", "", "x" * 33, "sp ace"):
        with pytest.raises(ValueError, match="not an id"):
            cfg.with_cluster_id(bad)
    with pytest.raises(ValueError, match="no cluster section"):
        parse_config(base()).with_cluster_id("x")


def test_shard_timings() -> None:
    cluster = parse_config(with_cluster()).cluster
    assert cluster is not None
    assert (cluster.partitions, cluster.heartbeat_s, cluster.heartbeat_ttl_s) == (16, 1, 3)
    with pytest.raises(ConfigError, match="must be at least twice heartbeat_s"):
        parse_config(with_cluster(heartbeat_s=2, heartbeat_ttl_s=3))
    with pytest.raises(ConfigError, match="cluster.partitions"):
        parse_config(with_cluster(partitions=0))


class _Reloads:
    def __init__(self) -> None:
        self.requested = 0

    def request_reload(self) -> None:
        self.requested += 1


@pytest.mark.parametrize(("role", "reloads"), [("all", 1), ("shard", 1), ("feed", 0)])
def test_sighup_reloads_one_process_and_a_shard_and_a_feed_says_why_not(role: str, reloads: int) -> None:
    from structlog.testing import capture_logs

    from bot.service.app import FEED_RELOAD, Daemon

    daemon = Daemon(parse_config(with_cluster()), role=role)
    membership = _Reloads()
    daemon.membership = membership  # type: ignore[assignment]
    with capture_logs() as logs:
        daemon.request_reload()  # what the SIGHUP handler calls
    assert membership.requested == reloads
    ignored = [e for e in logs if e["event"] == "reload_ignored"]
    assert ignored == ([] if reloads else [{"event": "reload_ignored", "role": "feed", "reason": FEED_RELOAD,
                                            "log_level": "warning"}])  # fmt: skip
    if not reloads:
        assert "a feed serves no follower" in FEED_RELOAD
        assert "its leads change only with a restart" in FEED_RELOAD


def test_a_reload_keeps_the_shard_id_given_at_start(tmp_path: Path) -> None:
    import yaml

    from bot.commands.run import config_reader

    path = tmp_path / "copybot.yaml"
    path.write_text(yaml.safe_dump(with_cluster()), encoding="utf-8")
    cluster = config_reader(str(path), "shard-9")().cluster
    assert cluster is not None
    assert cluster.id == "shard-9"  # the file says shard-a: a reload would see `cluster` changed
    plain = config_reader(str(path), None)().cluster
    assert plain is not None
    assert plain.id == "shard-a"
