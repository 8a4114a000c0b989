"""What only the PostgreSQL backend promises, on a real server: migrations recorded once even when
instances start together, leases that hold across instances (two pools claiming at once never
take one row twice; a locked row is skipped, not waited for), a finish fenced by its lease,
uniqueness by constraints, libpq's `?sslmode=`, and asyncpg imported only when asked for."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from relay.domain import Outcome
from relay.errors import ConfigError
from relay.store import NewDelivery, Store, open_store
from relay.store.postgres import PostgresStore
from relay.store.postgres.schema import MIGRATIONS
from tests.store.pgcluster import BINDIR_ENV, REQUIRE_ENV, Cluster
from tests.store.test_contract import submitted

ROOT = Path(__file__).resolve().parents[2]
TASKS = 120


@pytest.fixture
async def two(postgres_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two instances on one database: two stores, two pools."""
    a = await open_store(postgres_url, pool_size=4)
    b = await open_store(postgres_url, pool_size=4)
    yield a, b
    await a.close()
    await b.close()


async def claim_everything(
    stores: Sequence[Store], claim: Callable[[Store, str], Awaitable[list[Any]]]
) -> dict[str, list[Any]]:
    """Four workers per store claim in small batches, all at once, until nothing is left."""
    claimed: dict[str, list[Any]] = {}

    async def worker(store: Store, owner: str) -> None:
        while batch := await claim(store, owner):
            claimed.setdefault(owner, []).extend(batch)

    await asyncio.gather(*(worker(s, f"{i}-{w}") for i, s in enumerate(stores) for w in range(4)))
    return claimed


def instances(claimed: dict[str, list[Any]]) -> set[str]:
    return {owner.split("-")[0] for owner, batch in claimed.items() if batch}


async def applied(url: str) -> list[str]:
    con = await asyncpg.connect(url)
    try:
        return [r[0] for r in await con.fetch("SELECT name FROM migrations ORDER BY name")]
    finally:
        await con.close()


async def test_migrations_are_recorded_once_when_instances_start_together(postgres_url: str):
    stores = await asyncio.gather(*(open_store(postgres_url, pool_size=2) for _ in range(4)))
    assert await applied(postgres_url) == [name for name, _ in MIGRATIONS]
    first = stores[0]
    assert isinstance(first, PostgresStore)
    assert await first.migrate() == []  # nothing left to apply
    for store in stores:
        await store.close()
    again = await open_store(postgres_url)
    await again.ping()
    await again.close()
    assert await applied(postgres_url) == [name for name, _ in MIGRATIONS]


async def test_two_instances_never_claim_one_task_twice(two: tuple[Store, Store]):
    a, b = two
    for i in range(TASKS):
        await submitted(a, f"v{i}", due=10.0)

    async def claim(store: Store, owner: str) -> list[Any]:
        return await store.claim_due(now=20.0, lease_owner=owner, lease_s=600, limit=5)

    claimed = await claim_everything(two, claim)
    ids = Counter(t.id for batch in claimed.values() for t in batch)
    assert len(ids) == TASKS and set(ids.values()) == {1}
    assert instances(claimed) == {"0", "1"}  # both took part
    for owner, batch in claimed.items():
        for task in batch:
            stored = await b.get_task(task.id)
            assert stored is not None and stored.lease_owner == owner


async def test_a_finish_fenced_by_the_lease_succeeds_once(two: tuple[Store, Store]):
    a, b = two
    for i in range(TASKS):
        await submitted(a, f"v{i}", due=10.0)
    leased = await a.claim_due(now=20.0, lease_owner="a", lease_s=600, limit=TASKS)
    assert len(leased) == TASKS

    async def finish(store: Store, task_id: str, lease: str) -> bool:
        done = await store.finish(
            task_id,
            lease,
            Outcome("completed"),
            now=30.0,
            deliveries=[NewDelivery(f"evt_{task_id}", "https://a.test/h", "{}")],
            copies=["video"],
        )
        return done is not None

    # per task: the holder twice (a retry on the other instance's pool) and a stranger, at once
    results = await asyncio.gather(
        *(
            finish(store, t.id, lease)
            for t in leased
            for store, lease in ((a, "a"), (b, "a"), (b, "b"))
        )
    )
    per_task = [results[i : i + 3] for i in range(0, len(results), 3)]
    assert all(sum(r) == 1 and not r[2] for r in per_task)

    async def deliveries(store: Store, owner: str) -> list[Any]:
        return await store.claim_deliveries(now=40.0, lease_owner=owner, lease_s=600, limit=7)

    events = await claim_everything(two, deliveries)
    counted = Counter(d.event_id for batch in events.values() for d in batch)
    assert len(counted) == TASKS and set(counted.values()) == {1}

    async def copies(store: Store, owner: str) -> list[Any]:
        return await store.claim_copies(now=40.0, lease_owner=owner, lease_s=600, limit=7)

    jobs = await claim_everything(two, copies)
    counted = Counter(c.task_id for batch in jobs.values() for c in batch)
    assert len(counted) == TASKS and set(counted.values()) == {1}


async def test_a_lease_that_ran_out_fences_out_its_old_holder(two: tuple[Store, Store]):
    a, b = two
    await submitted(a, "v", due=10.0)
    assert [t.id for t in await a.claim_due(now=20.0, lease_owner="a", lease_s=30, limit=1)]
    # instance a stalls past its lease; b takes the task over
    assert [t.id for t in await b.claim_due(now=51.0, lease_owner="b", lease_s=30, limit=1)]
    assert await a.finish("v", "a", Outcome("completed"), now=52.0) is None
    assert not await a.reschedule("v", "a", next_poll_at=60.0, interval=5.0)
    done = await b.finish("v", "b", Outcome("completed"), now=53.0)
    assert done is not None and done.status == "completed"


async def test_a_locked_row_is_skipped_not_waited_for(postgres_url: str, two: tuple[Store, Store]):
    a, _ = two
    await submitted(a, "locked", due=10.0)
    await submitted(a, "free", due=11.0)
    other = await asyncpg.connect(postgres_url)
    try:
        async with other.transaction():
            # another instance is in the middle of claiming "locked"
            await other.execute("SELECT 1 FROM tasks WHERE id = 'locked' FOR UPDATE")
            claimed = await asyncio.wait_for(
                a.claim_due(now=20.0, lease_owner="a", lease_s=30, limit=10), timeout=5
            )
            assert [t.id for t in claimed] == ["free"]
    finally:
        await other.close()


async def test_an_idempotency_key_claimed_at_once_goes_to_one_instance(
    two: tuple[Store, Store],
):
    a, b = two
    keys = [f"k{i}" for i in range(50)]
    results = await asyncio.gather(
        *(
            store.claim_idempotency_key("alice", k, "h", f"{name}-{k}", 100.0, 60)
            for k in keys
            for name, store in (("a", a), ("b", b))
        )
    )
    assert all(results[i] != results[i + 1] for i in range(0, len(results), 2))
    await asyncio.gather(*(a.ensure_user("carol", "user", 1.0) for _ in range(10)))
    assert [u.name for u in await b.list_users()] == ["carol"]


async def test_close_does_not_wait_for_a_connection_held_forever(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("relay.store.postgres.CLOSE_TIMEOUT_S", 0.2)
    store = await open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    await store._pool.raw.acquire()  # held for ever: a query stuck on a dead network, say
    await asyncio.wait_for(store.close(), timeout=5)
    watcher = await asyncpg.connect(postgres_url)
    try:
        for _ in range(100):
            others = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if others == 0:
                break
            await asyncio.sleep(0.05)
        assert others == 0  # the held connection was closed too
    finally:
        await watcher.close()


async def test_a_refused_connection_says_why_without_the_password():
    with pytest.raises(OSError) as err:
        await open_store("postgresql://relay:hunter2-secret@127.0.0.1:1/relay")
    assert "Connect call failed" in str(err.value) and "hunter2" not in str(err.value)


async def ssl_in_use(url: str) -> bool:
    store = await open_store(url)
    try:
        assert isinstance(store, PostgresStore)
        return bool(
            await store._pool.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        )
    finally:
        await store.close()


async def test_sslmode_is_honoured(pg_cluster: Cluster, postgres_url: str):
    database = postgres_url.rsplit("/", 1)[1]
    assert not await ssl_in_use(pg_cluster.url(database, sslmode="disable"))
    assert await ssl_in_use(pg_cluster.url(database, sslmode="require"))
    assert await ssl_in_use(pg_cluster.url(database))  # "prefer", as libpq
    cert = str(pg_cluster.cert)
    assert await ssl_in_use(pg_cluster.url(database, sslmode="verify-full", sslrootcert=cert))
    # a server certificate the given root did not sign is refused
    other_root = "/etc/ssl/certs/ca-certificates.crt"
    with pytest.raises(Exception, match="certificate verify failed"):
        await open_store(pg_cluster.url(database, sslmode="verify-full", sslrootcert=other_root))
    with pytest.raises(Exception, match="sslmode"):
        await open_store(pg_cluster.url(database, sslmode="sometimes"))


def test_the_cli_works_on_every_backend(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from relay.cli import main

    conf = tmp_path / "config.toml"
    conf.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n[store]\nurl = "{store_url}"\n'
        '[[channels]]\nname = "demo"\nprovider = "demo"\nmodels = ["sora-2"]\n'
    )
    c = ["--config", str(conf)]
    assert main(["users", "add", "frank", *c]) == 0
    assert main(["users", "add", "frank", *c]) == 1
    assert main(["keys", "create", "frank", *c]) == 0
    assert main(["users", "list", *c]) == 0
    assert "\nfrank  user  no " in capsys.readouterr().out

    async def keys() -> list[str]:
        store = await open_store(store_url)
        try:
            return [k.user for k in await store.list_keys()]
        finally:
            await store.close()

    assert asyncio.run(keys()) == ["frank"]


def test_without_asyncpg_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # what an install without the extra has
    for name in [m for m in sys.modules if m.startswith("relay.store.postgres")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ConfigError) as err:
        asyncio.run(open_store("postgresql://relay@127.0.0.1:1/relay"))
    assert err.value.problems == [
        "store.url: a postgresql:// URL needs asyncpg, which the postgres extra installs:"
        " pip install 'video-relay[postgres]'"
    ]
    from relay.cli import main

    conf = tmp_path / "config.toml"
    conf.write_text(
        '[store]\nurl = "postgresql://relay@127.0.0.1:1/relay"\n'
        '[[channels]]\nname = "demo"\nprovider = "demo"\nmodels = ["sora-2"]\n'
    )
    assert main(["users", "list", "--config", str(conf)]) == 2
    assert "pip install 'video-relay[postgres]'" in capsys.readouterr().err


def test_a_sqlite_relay_never_imports_asyncpg(tmp_path: Path):
    script = f"""
import asyncio, pathlib, sys
import relay.app, relay.cli
from relay.store import open_store, sqlite_url

async def main():
    store = await open_store(sqlite_url(pathlib.Path({str(tmp_path)!r}) / "relay.db"))
    await store.close()

asyncio.run(main())
assert "asyncpg" not in sys.modules, "asyncpg was imported"
"""
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True)


@pytest.mark.parametrize("ci", [False, True])
def test_without_postgresql_its_tests_skip_saying_why_or_fail_in_ci(ci: bool, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_ENV}
    env[BINDIR_ENV] = str(tmp_path)  # no initdb here: a machine without PostgreSQL
    if ci:
        env[REQUIRE_ENV] = "1"
    one_test = "tests/store/test_contract.py::test_move_to_channel"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", one_test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    reason = f"PostgreSQL is not installed (no initdb in {tmp_path}; apt-get install postgresql)"
    if ci:
        assert run.returncode == 1, run.stdout
        assert f"RELAY_TEST_REQUIRE_POSTGRES is set, but {reason}" in run.stdout
        assert "1 passed, 1 error" in run.stdout  # SQLite still ran
    else:
        assert run.returncode == 0, run.stdout
        assert reason in run.stdout and "1 passed, 1 skipped" in run.stdout


async def test_relays_hear_each_other_through_notify(two: tuple[Store, Store]):
    one, other = two
    heard: list[str] = []
    await other.listen(heard.append)
    await submitted(one, "v", due=5.0)  # a task any relay may poll
    await one.finish(
        "v",
        None,
        Outcome("completed"),
        now=6.0,
        deliveries=[NewDelivery("evt_1", "https://a.test/h", "{}")],
        copies=["video"],
    )
    for _ in range(100):
        if heard == ["due", "finished"]:
            break
        await asyncio.sleep(0.02)
    assert heard == ["due", "finished"]
