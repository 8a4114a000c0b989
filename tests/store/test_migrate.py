"""`relay migrate --to postgresql://... [--storage]`: a SQLite relay's rows (users, keys, tasks,
idempotency keys, webhook outbox, copy jobs) land in PostgreSQL row for row, a second run adds
nothing, a target holding other rows is refused with nothing written, `--storage` puts the
stored videos in the bucket; and a relay started on the result serves the same videos."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from relay import cli
from relay.config import Config
from relay.store import open_store
from relay.store.transfer import COPIED, LEFT_BEHIND
from tests.conftest import ALICE, BOB, Relay, auth
from tests.fakes.base import FakeUpstream
from tests.fakes.scripted import ScriptedProvider
from tests.s3server import S3Server, s3_server  # noqa: F401 - the session fixture

JSON = {"upstream_state", "request"}


def write_config(tmp_path: Path, data_dir: Path, storage: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[server]\ndata_dir = "{data_dir}"\n{storage}\n'
        '[[channels]]\nname = "demo"\nprovider = "demo"\nmodels = ["sora-2"]\n'
    )
    return path


def s3_table(server: S3Server) -> str:
    s3 = server.storage()["s3"]
    assert isinstance(s3, dict)
    lines = "".join(
        f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}\n" for k, v in s3.items()
    )
    return f"[storage.s3]\n{lines}"  # backend stays "local" until the switch


async def migrate(
    capsys: pytest.CaptureFixture[str], config: Path, *args: str
) -> tuple[int, str, str]:
    code = await asyncio.to_thread(cli.main, ["migrate", "--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def sqlite_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        cursor = db.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cursor.description]
        return sorted(_normal(names, row) for row in cursor.fetchall())


async def postgres_rows(url: str, table: str, names: list[str]) -> list[tuple[Any, ...]]:
    con = await asyncpg.connect(url)
    try:
        rows = await con.fetch(f"SELECT {', '.join(names)} FROM {table}")
    finally:
        await con.close()
    return sorted(_normal(names, tuple(row)) for row in rows)


def columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]


def _normal(names: list[str], row: tuple[Any, ...]) -> tuple[Any, ...]:
    """One form for both databases: JSON as parsed values, numbers as floats."""
    out: list[Any] = []
    for name, value in zip(names, row, strict=True):
        if name in JSON and isinstance(value, str):
            value = orjson.loads(value)
        if name in JSON:
            value = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            value = float(value)
        out.append(value)
    return tuple(out)


async def filled_relay(
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    cdn: FakeUpstream,
    hook_port: int,
) -> tuple[Relay, list[dict[str, Any]]]:
    """A SQLite relay with finished and failed videos, stored copies, an idempotency key, a
    webhook that keeps failing (its deliveries wait in the outbox) and a key made at run time."""
    config = make_config(
        storage={"keep_videos": True},
        webhooks=[{"url": f"http://127.0.0.1:{hook_port}/hook", "secret": "whsec_" + "a" * 32}],
        channels=[
            {
                "name": "s",
                "provider": "scripted",
                "models": ["sora-2"],
                "options": {"cdn_url": cdn.cdn_url()},
            }
        ],
    )
    relay: Relay = await start_relay(config)
    videos = [await relay.create(), await relay.create(BOB, prompt="a red kite")]
    resp = await relay.client.post(
        "/v1/videos", json={"prompt": "once"}, headers={**auth(), "Idempotency-Key": "k-1"}
    )
    videos.append(await resp.json())
    for i, video in enumerate(videos):
        await relay.wait(video["id"], ALICE_OR_BOB[i])
    for _ in range(500):  # the three videos stored (the scripted thumbnails have no URL)
        if await relay.store.stored_bytes() >= 3 * len(cdn.files["video.mp4"]):
            break
        relay.copier.wake()
        await asyncio.sleep(0.02)
    assert await relay.store.stored_bytes() >= 3 * len(cdn.files["video.mp4"])
    user = await relay.store.get_user("alice")
    assert user is not None
    await relay.store.add_key(user.id, "laptop", "sk-laptop", "f" * 64, relay.clock())
    return relay, videos


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_every_table_is_copied_or_left_behind_by_name(tmp_path: Path, postgres_url: str):
    store = await open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    await store.close()
    with sqlite3.connect(tmp_path / "relay.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables - set(LEFT_BEHIND) == {t for t in COPIED if t in tables}
    assert tables >= set(COPIED) - {"sessions"}  # sessions come with the dashboard
    pg = await open_store(postgres_url)
    await pg.close()
    con = await asyncpg.connect(postgres_url)
    try:
        theirs = {
            r[0]
            for r in await con.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        }
    finally:
        await con.close()
    assert {t for t in COPIED if t in tables} <= theirs


async def test_migrate_copies_everything_once_and_a_relay_on_it_serves_the_same_videos(
    tmp_path: Path,
    data_dir: Path,
    postgres_url: str,
    s3_server: S3Server,  # noqa: F811
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    providers: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
):
    providers["scripted"] = ScriptedProvider
    cdn = FakeUpstream()
    await cdn.start()
    try:
        old, videos = await filled_relay(start_relay, make_config, cdn, free_port())
        before = {v["id"]: await old.get(v["id"], ALICE_OR_BOB[i]) for i, v in enumerate(videos)}
        await old.client.close()
        database = data_dir / "relay.db"
        config = write_config(tmp_path, data_dir, s3_table(s3_server))

        code, out, err = await migrate(capsys, config, "--to", postgres_url, "--storage")
        assert code == 0, err
        for table in ("users", "api_keys", "tasks", "idempotency_keys", "webhook_deliveries"):
            count = len(sqlite_rows(database, table))
            assert count > 0, table
            assert f"  {table:<20} {count:>8} rows, {count:>8} there" in out
        with sqlite3.connect(database) as db:
            [[stored]] = db.execute("SELECT count(*) FROM copies WHERE state = 'stored'")
        assert stored >= 3
        assert f"videos: {stored} copied, 0 there already, 0 missing on disk" in out
        assert f'  [store]    url = "{postgres_url}"' in out
        assert '  [storage]  backend = "s3"' in out
        for table in COPIED:
            if table == "sessions" and not columns(database, table):
                continue
            names = columns(database, table)
            assert await postgres_rows(postgres_url, table, names) == sqlite_rows(
                database, table
            ), table

        # twice: nothing doubled, nothing uploaded again
        code, out, err = await migrate(capsys, config, "--to", postgres_url, "--storage")
        assert code == 0, err
        assert f"videos: 0 copied, {stored} there already" in out
        for table in COPIED:
            names = columns(database, table)
            if names:
                assert len(await postgres_rows(postgres_url, table, names)) == len(
                    sqlite_rows(database, table)
                )

        # the switch: the same videos, their bytes from the bucket, new rows after the copied
        requests = cdn.cdn_stats.requests
        new: Relay = await start_relay(
            make_config(
                store={"url": postgres_url},
                storage=s3_server.storage(keep_videos=True),
                channels=[
                    {
                        "name": "s",
                        "provider": "scripted",
                        "models": ["sora-2"],
                        "options": {"cdn_url": cdn.cdn_url()},
                    }
                ],
            )
        )
        for i, video in enumerate(videos):
            assert await new.get(video["id"], ALICE_OR_BOB[i]) == before[video["id"]]
            resp = await new.client.get(
                f"/v1/videos/{video['id']}/content",
                headers={**auth(ALICE_OR_BOB[i]), "Range": "bytes=10-19"},
            )
            assert resp.status == 206
            assert await resp.read() == cdn.files["video.mp4"][10:20]
        assert cdn.cdn_stats.requests == requests
        resp = await new.client.post(
            "/v1/videos", json={"prompt": "once"}, headers={**auth(), "Idempotency-Key": "k-1"}
        )
        assert (await resp.json())["id"] == videos[2]["id"]  # the key came along
        fresh = await new.create()
        assert fresh["id"] not in before
        assert (await new.wait(fresh["id"]))["status"] == "completed"
        listed = await (await new.client.get("/v1/videos?limit=100", headers=auth())).json()
        assert {v["id"] for v in listed["data"]} >= {videos[0]["id"], videos[2]["id"]}
    finally:
        await cdn.close()


async def test_a_target_holding_other_rows_is_refused_with_nothing_written(
    tmp_path: Path,
    data_dir: Path,
    postgres_url: str,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    capsys: pytest.CaptureFixture[str],
):
    sqlite_relay: Relay = await start_relay(make_config())
    await sqlite_relay.wait((await sqlite_relay.create())["id"])
    await sqlite_relay.client.close()
    # another relay already runs on the database, with its own user and task
    other = await open_store(postgres_url)
    try:
        await other.add_user("carol", "user", 1.0)
    finally:
        await other.close()
    code, _out, err = await migrate(capsys, write_config(tmp_path, data_dir), "--to", postgres_url)
    assert code == 2
    assert "nothing was written: the PostgreSQL database already holds 1 users rows" in err
    con = await asyncpg.connect(postgres_url)
    try:
        assert await con.fetchval("SELECT count(*) FROM tasks") == 0
        assert await con.fetchval("SELECT array_agg(name) FROM users") == ["carol"]
    finally:
        await con.close()


async def test_an_unknown_table_is_refused_by_name(
    tmp_path: Path,
    data_dir: Path,
    postgres_url: str,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    capsys: pytest.CaptureFixture[str],
):
    relay: Relay = await start_relay(make_config())
    await relay.client.close()
    with sqlite3.connect(data_dir / "relay.db") as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
    code, _, err = await migrate(capsys, write_config(tmp_path, data_dir), "--to", postgres_url)
    assert code == 2
    assert "tables this version cannot copy: ['notes']" in err


@pytest.mark.parametrize(
    ("args", "storage", "problem"),
    [
        (["--to", "mysql://x/y"], "", "--to: a postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL"),
        (["--to", "postgresql://h/d", "--storage"], "", "--storage: add a [storage.s3] table"),
        (
            ["--to", "postgresql://h/d"],
            '[store]\nurl = "postgresql://h/other"\n',
            "store.url: this relay is on PostgreSQL already",
        ),
    ],
)
async def test_what_cannot_be_migrated_is_named(
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    storage: str,
    problem: str,
):
    data_dir.mkdir()
    sqlite3.connect(data_dir / "relay.db").close()
    code, out, err = await migrate(capsys, write_config(tmp_path, data_dir, storage), *args)
    assert code == 2 and out == ""
    assert problem in err


async def test_an_unreachable_target_is_named_without_its_password(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
):
    data_dir.mkdir()
    sqlite3.connect(data_dir / "relay.db").close()
    port = free_port()
    url = f"postgresql://relay:Hidden-Pass-1@127.0.0.1:{port}/relay"
    code, _, err = await migrate(capsys, write_config(tmp_path, data_dir), "--to", url)
    assert code == 2
    assert f"--to: cannot open the database at postgresql://127.0.0.1:{port}/relay" in err
    assert "Hidden-Pass-1" not in err


async def test_the_target_url_takes_its_password_from_relay_env(
    tmp_path: Path,
    data_dir: Path,
    postgres_url: str,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    capsys: pytest.CaptureFixture[str],
):
    relay: Relay = await start_relay(make_config())
    await relay.client.close()
    con = await asyncpg.connect(postgres_url)
    try:
        await con.execute("DROP ROLE IF EXISTS mover")
        await con.execute("CREATE ROLE mover LOGIN PASSWORD 'Env-Only-Pass' SUPERUSER")
    finally:
        await con.close()
    config = write_config(tmp_path, data_dir)
    (tmp_path / "relay.env").write_text("RELAY_DB_PASSWORD=Env-Only-Pass\n")
    target = postgres_url.replace(
        "postgresql://postgres@", "postgresql://mover:${RELAY_DB_PASSWORD}@"
    )
    code, out, err = await migrate(capsys, config, "--to", target)
    assert code == 0, err
    assert "Env-Only-Pass" not in out + err
    assert f'url = "{target}"' in out  # printed as given: the secret stays in relay.env
    code, _, err = await migrate(capsys, config, "--to", target.replace("RELAY_DB", "NO_SUCH"))
    assert code == 2
    assert "--to: environment variable NO_SUCH_PASSWORD is not set" in err


def test_the_password_is_shown_as_a_placeholder():
    from relay.cli.migrate import _with_placeholder

    assert (
        _with_placeholder("postgresql://relay:s3cret@db.lan:5432/relay?sslmode=require")
        == "postgresql://relay:${RELAY_DB_PASSWORD}@db.lan:5432/relay?sslmode=require"
    )
    assert _with_placeholder("postgresql://relay@db/relay") == "postgresql://relay@db/relay"


ALICE_OR_BOB = [ALICE, BOB, ALICE]
