"""The daemon's notifications end to end: configured by URL from the environment, a kill switch
engaged and released reaches the destination (apprise's json:// target on loopback) as messages
for a person, and the critical-only destination gets only the critical one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.integration.harness import Harness, follower
from tests.unit.test_notify import TOKEN, Receiver, receiver  # noqa: F401 - the fixture


async def test_kill_switch_reaches_people_through_the_daemon(
    harness: Harness,
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811 - the imported fixture
) -> None:
    h = harness
    kill = tmp_path / "KILL"
    h.env["NOTIFY_ALL"] = receiver.url("json", "all")
    h.env["NOTIFY_PAGER"] = receiver.url("json", "pager")
    h.build_config(
        [follower("f", {"mode": "multiplier", "multiplier": "0.1"})],
        kill_switch_file=str(kill),
        alerts={"notify": [{"url": {"env": "NOTIFY_ALL"}, "min_severity": "info"},
                           {"url": {"env": "NOTIFY_PAGER"}, "min_severity": "critical"}]},
    )  # fmt: skip
    engine = await h.start_daemon()
    kill.touch()
    for _ in range(100):
        if engine.kill_switch():
            break
        await asyncio.sleep(0.05)
    kill.unlink()
    for _ in range(100):
        if not engine.kill_switch():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.5)  # the gather window (2 s) of each kind
    await h.stop_daemon()
    by_path: dict[str, list[str]] = {}
    for m in receiver.messages:
        by_path.setdefault(m["path"].split("/")[1], []).append(m["title"])
    assert sorted(by_path["all"]) == [
        "copybot CRITICAL: Kill switch engaged",
        "copybot INFO: Kill switch released",
    ]
    assert by_path["pager"] == ["copybot CRITICAL: Kill switch engaged"]
    engaged = next(m for m in receiver.messages if m["title"].endswith("engaged"))
    # (the long tmp path itself reads as a token to the redactor: only its start is checked)
    assert engaged["message"].startswith("all followers (global): ACTIVE -> HALTED (kill switch file ")
    assert "What to do: Remove the kill-switch file" in engaged["message"]
    assert all(TOKEN not in m["title"] + m["message"] for m in receiver.messages)
