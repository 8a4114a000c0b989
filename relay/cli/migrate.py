"""`relay migrate --to postgresql://... [--storage]`: move a SQLite relay to PostgreSQL (and its
stored videos to the S3 bucket of `[storage.s3]`), so several relays can share the work.

The rows go over in one transaction with their counts checked (relay/store/transfer.py); the
videos one by one, each skipped when the bucket already holds it whole. Running it again copies
only what changed since, so it can run once with the relay up and once more right after it is
stopped. Nothing in the SQLite database or the data directory is changed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import aiosqlite

from relay import config as config_mod
from relay.cli.common import database_name, load, one_line
from relay.config import Config
from relay.config.envfile import environment
from relay.config.toml import Problems, expand
from relay.errors import ConfigError
from relay.storage import S3Library, StorageError
from relay.store.transfer import TransferError, transfer

CHUNK = 1 << 20


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    migrate = sub.add_parser(
        "migrate",
        parents=[common],
        help="copy this relay's SQLite database to PostgreSQL (and, with --storage, its videos"
        " to the S3 bucket of [storage.s3])",
    )
    migrate.add_argument(
        "--to", required=True, metavar="URL", help="postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
    )
    migrate.add_argument(
        "--storage", action="store_true", help="also copy the stored videos to [storage.s3]"
    )
    migrate.set_defaults(run=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    config = load(args)
    # as typed (its ${NAME} kept) for the line to set, expanded for the connection
    shown = args.to if "${" in args.to else _with_placeholder(args.to)
    args.to = _expanded(args.to, args.config)
    problem = _refusal(config, args)
    if problem:
        print(f"relay: {problem}", file=sys.stderr)
        return 2
    return asyncio.run(_migrate(config, args.to, shown, args.storage))


def _expanded(url: str, explicit: str | None) -> str:
    """`${NAME}` in --to comes from the environment and relay.env, as in the config, so the
    password need not be typed where `ps` and the shell history see it."""
    path = config_mod.find_config_path(explicit)
    env = environment(path) if path is not None else os.environ
    problems = Problems()
    expanded = expand(url, env, "--to", problems)
    if problems.items:
        raise ConfigError(problems.items)
    return str(expanded)


def _refusal(config: Config, args: argparse.Namespace) -> str | None:
    if not args.to.startswith(("postgresql://", "postgres://")):
        return "--to: a postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL"
    if not config.store.url.startswith("sqlite:///"):
        return "store.url: this relay is on PostgreSQL already; migrate copies from SQLite"
    if not Path(config.store.url.removeprefix("sqlite:///")).is_file():
        return f"store.url: no database at {config.store.url.removeprefix('sqlite:///')}"
    if args.storage and config.storage.s3 is None:
        return "--storage: add a [storage.s3] table (endpoint, bucket, keys) to the config first"
    return None


async def _migrate(config: Config, url: str, shown: str, storage: bool) -> int:
    try:
        from relay.store.postgres import PostgresStore
    except ModuleNotFoundError as exc:
        if exc.name != "asyncpg":
            raise
        raise ConfigError(
            ["--to: PostgreSQL needs asyncpg: pip install 'video-relay[postgres]'"]
        ) from None
    source = Path(config.store.url.removeprefix("sqlite:///"))
    where = database_name(url)
    try:
        store = await PostgresStore.open(url, pool_size=2)
    except Exception as exc:  # the driver names the cause (host, password, database)
        print(f"relay: --to: cannot open the database at {where}: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        print(f"copying {source} to {where}")
        try:
            counts = await transfer(source, store.pool)
        except TransferError as exc:
            print(f"relay: nothing was written: {exc}", file=sys.stderr)
            return 2
        for counted in counts:
            print(f"  {counted.table:<20} {counted.source:>8} rows, {counted.target:>8} there")
        if storage:
            assert config.storage.s3 is not None
            try:
                done = await _copy_videos(config, source, store.pool)
            except StorageError as exc:
                print(f"relay: storage.s3: {exc}; run migrate again to go on", file=sys.stderr)
                return 2
            print(
                f"  videos: {done['copied']} copied, {done['there']} there already,"
                f" {done['missing']} missing on disk (served from the upstream while it has them)"
            )
    finally:
        await store.close()
    _next_steps(config, shown, storage)
    return 0


async def _copy_videos(config: Config, source: Path, pool: Any) -> dict[str, int]:
    """Each stored copy the SQLite database lists, into the bucket; a copy the bucket holds
    whole already is skipped."""
    assert config.storage.s3 is not None
    done = {"copied": 0, "there": 0, "missing": 0}
    async with aiosqlite.connect(f"file:{source}?mode=ro", uri=True) as db:
        rows = await db.execute_fetchall(
            "SELECT task_id, variant, path, content_type, bytes FROM copies"
            " WHERE state = 'stored' AND path IS NOT NULL ORDER BY task_id, variant"
        )
    async with aiohttp.ClientSession() as session:
        library = S3Library(config.storage.s3, session)
        for task_id, variant, path, content_type, size in rows:
            file = config.server.data_dir / path
            if not file.is_file():
                done["missing"] += 1
                continue
            length = file.stat().st_size
            if await library.size_of(path) == length:
                done["there"] += 1
                continue
            key, written = await library.write(
                task_id, variant, content_type or "", _chunks(file), length
            )
            if key != path or written != size:
                await pool.execute(
                    "UPDATE copies SET path = $1, bytes = $2 WHERE task_id = $3 AND variant = $4",
                    key,
                    written,
                    task_id,
                    variant,
                )
            done["copied"] += 1
    return done


async def _chunks(file: Path) -> AsyncIterator[bytes]:
    with file.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk


def _next_steps(config: Config, shown: str, storage: bool) -> None:
    where = config.source if config.source != "embedded defaults" else "config.toml"
    print(
        "\nDone. If the relay ran during the copy, stop it and run this once more (it copies"
        " what changed);"
    )
    print(f"then set in {where}:")
    print(f'  [store]    url = "{shown}"')
    if storage:
        print('  [storage]  backend = "s3"')
    if "${RELAY_DB_PASSWORD}" in shown:
        print("and the password in relay.env beside it: RELAY_DB_PASSWORD=...")
    print("Start the relay; every relay that shares the work gets the same lines.")


def _with_placeholder(url: str) -> str:
    """The URL with its password as ${RELAY_DB_PASSWORD}: a secret belongs in relay.env."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(
        parts._replace(netloc=f"{parts.username}:${{RELAY_DB_PASSWORD}}@{host}{port}")
    )
