"""`relay users` and `relay keys`: accounts in the store (keys only as hashes)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from relay import config as config_mod
from relay.auth import digest, display_prefix, new_api_key
from relay.cli.common import date, with_store
from relay.store import Store


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    users = sub.add_parser("users", help="manage users").add_subparsers(metavar="ACTION")
    add = users.add_parser("add", parents=[common], help="add a user")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="the user sees every user's tasks")
    add.set_defaults(run=cmd_users_add)
    ulist = users.add_parser("list", parents=[common], help="list users")
    ulist.set_defaults(run=cmd_users_list)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(metavar="ACTION")
    create = keys.add_parser("create", parents=[common], help="create a key (printed once)")
    create.add_argument("user")
    create.add_argument("--name", default="", help="a label for the key")
    create.set_defaults(run=cmd_keys_create)
    klist = keys.add_parser("list", parents=[common], help="list keys (never the keys themselves)")
    klist.add_argument("user", nargs="?")
    klist.set_defaults(run=cmd_keys_list)
    revoke = keys.add_parser("revoke", parents=[common], help="revoke a key by its id")
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(run=cmd_keys_revoke)


def cmd_users_add(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        if await store.get_user(args.name):
            print(f"relay: user {args.name!r} exists already", file=sys.stderr)
            return 1
        user = await store.add_user(args.name, "admin" if args.admin else "user", time.time())
        print(f"added {user.role} {user.name}")
        return 0

    if config_mod.invalid_name(args.name):
        print("relay: a user name is letters, digits, '_', '.', '-' (at most 64)", file=sys.stderr)
        return 2
    return int(with_store(args, work))


def cmd_users_list(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        for user in await store.list_users():
            print(f"{user.name}\t{user.role}\t{date(user.created_at)}")
        return 0

    return int(with_store(args, work))


def cmd_keys_create(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        user = await store.get_user(args.user)
        if user is None:
            print(
                f"relay: no user {args.user!r}; add one with `relay users add {args.user}`",
                file=sys.stderr,
            )
            return 1
        key = new_api_key()
        key_id = await store.add_key(
            user.id, args.name, display_prefix(key), digest(key), time.time()
        )
        print(key)
        print(f"key {key_id} for {user.name}: shown once, keep it safe", file=sys.stderr)
        return 0

    return int(with_store(args, work))


def cmd_keys_list(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        for key in await store.list_keys(args.user):
            status = f"revoked {date(key.revoked_at)}" if key.revoked_at else "active"
            print(
                f"{key.id}\t{key.user}\t{key.name or '-'}\t{key.prefix}...\t"
                f"{date(key.created_at)}\t{status}"
            )
        return 0

    return int(with_store(args, work))


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        if await store.revoke_key(args.key_id, time.time()):
            print(f"revoked key {args.key_id}")
            return 0
        print(f"relay: no active key with id {args.key_id}", file=sys.stderr)
        return 1

    return int(with_store(args, work))
