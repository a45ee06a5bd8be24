from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.harness import Harness


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with Harness(tmp_path) as h:
        yield h


@pytest.fixture
async def vharness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """A harness with the lead on one venue and the followers on another: parametrize it
    indirectly with (lead venue, follower venue), e.g. `harness.PAIRS`."""
    lead_venue, follower_venue = request.param
    async with Harness(tmp_path, lead_venue=lead_venue, follower_venue=follower_venue) as h:
        yield h
