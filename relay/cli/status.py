"""`relay status`: what the running relay (or the group of relays on one database) is doing, read
from the store the config names: whether it answers, each channel's state as the relays last
published it (cooling until when, refused credentials, out of quota, and why), tasks in flight
against `max_in_flight`, and the task counts. It needs no provider secrets and no key."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from relay.cli.common import database_name, load, missing_database, one_line, table
from relay.config import Config
from relay.store import HealthChange, Store, open_store

STATES = {
    "ready": "ready",
    "cooling": "cooling",
    "rate_limited": "rate limited",
    "credentials": "credentials refused",
    "quota": "out of quota",
}


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    status = sub.add_parser(
        "status", parents=[common], help="channels, tasks in flight and task counts"
    )
    status.set_defaults(run=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    missing = missing_database(config)
    if missing:  # a status read never creates a database
        print(f"relay: {missing}", file=sys.stderr)
        return 2
    print(f"database: {database_name(config.store.url)} (config: {config.source})")
    print(f"relay:    {_answers(config)}")
    try:
        return asyncio.run(_report(config))
    except (OSError, TimeoutError) as exc:
        print(f"relay: cannot read the database: {one_line(exc)}", file=sys.stderr)
        return 2


def _answers(config: Config) -> str:
    host = config.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - a wildcard
    url = f"http://{'[' + host + ']' if ':' in host else host}:{config.server.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return f"answering on {url.removesuffix('/healthz')}" + (
                "" if resp.status == 200 else f" (healthz {resp.status})"
            )
    except urllib.error.HTTPError as exc:
        return f"answering on {url.removesuffix('/healthz')}, but /healthz says {exc.code}"
    except (OSError, TimeoutError):
        return f"not answering on {url.removesuffix('/healthz')}"


async def _report(config: Config) -> int:
    store = await open_store(config.store.url, pool_size=1)
    try:
        return _print(config, *await _read(store))
    finally:
        await store.close()


async def _read(store: Store) -> tuple[dict[str, HealthChange], dict[str, int], dict[str, int]]:
    health = {row.channel: row for row in await store.health_changes(0.0)}
    return health, await store.count_active_by_channel(), await store.count_by_status()


def _print(
    config: Config,
    health: dict[str, HealthChange],
    active: dict[str, int],
    counts: dict[str, int],
) -> int:
    now = time.time()
    rows = [("CHANNEL", "PROVIDER", "STATE", "IN FLIGHT", "SINCE", "WHY")]
    for channel in config.channels:
        row = health.get(channel.name)
        limit = channel.max_in_flight
        flight = f"{active.get(channel.name, 0)}/{limit if limit else '-'}"
        if not channel.enabled:
            state, since, why = "disabled (config)", "-", "-"
        elif row is None:
            state, since, why = "ready", "-", "-"
        else:
            state = STATES.get(row.state, row.state)
            if row.until is not None and row.state != "ready":
                state = (
                    f"{state} until {_clock(row.until)}"
                    if row.until > now
                    else f"ready (was {state})"
                )
            since, why = _clock(row.changed_at), row.why or "-"
        rows.append((channel.name, channel.provider, state, flight, since, why))
    print()
    table(rows)
    order = ("queued", "in_progress", "completed", "failed")
    print()
    print("tasks:    " + "  ".join(f"{s} {counts.get(s, 0)}" for s in order))
    return 0


def _clock(ts: float) -> str:
    today = time.strftime("%Y-%m-%d", time.localtime())
    day = time.strftime("%Y-%m-%d", time.localtime(ts))
    return time.strftime("%H:%M:%S" if day == today else "%Y-%m-%d %H:%M", time.localtime(ts))
