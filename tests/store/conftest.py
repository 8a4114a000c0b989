"""The store contract runs over every backend: each test gets a fresh, migrated store.

PostgreSQL is a real server (tests/store/pgcluster.py), one per session, a fresh database per
test. Without PostgreSQL installed the postgres tests are skipped, saying why, unless
RELAY_TEST_REQUIRE_POSTGRES=1 (CI) makes that an error.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from relay.store import Store, open_store, sqlite_url
from tests.store.pgcluster import REQUIRE_ENV, Cluster, find_bindir, missing

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    reason = missing()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set, but {reason}")
        pytest.skip(f"{reason}; the SQLite tests still run")
    bindir = find_bindir()
    assert bindir is not None
    cluster = Cluster(bindir)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database on the session's server; dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    pg_cluster.create_database(name)
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


def backend_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return sqlite_url(tmp_path / "relay.db")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store, once per backend."""
    return backend_url(request, request.param, tmp_path)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(backend_url(request, request.param, tmp_path))
    yield opened
    await opened.close()
