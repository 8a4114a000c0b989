"""The store contract runs over every backend: each test gets a fresh, migrated store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.store import Store, open_store, sqlite_url

BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = sqlite_url(tmp_path / "relay.db")
    opened = await open_store(url)
    yield opened
    await opened.close()
