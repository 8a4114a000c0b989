"""`relay users` and `relay keys`: accounts in the store (keys only as hashes, passwords only as
scrypt hashes).

A password is asked for on a terminal (twice, not echoed); otherwise one line is read from
standard input, so `printf '%s\\n' "$PW" | relay users add alice` works in scripts. An empty
password means none: the user works with API keys only and cannot sign in to the dashboard.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from relay import config as config_mod
from relay import passwords
from relay.auth import digest, display_prefix, new_api_key
from relay.cli.common import date, load, table, with_store
from relay.store import Store


class _Refused(Exception):
    """A password the command will not take; the message says why."""


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    users = sub.add_parser("users", help="manage users").add_subparsers(metavar="ACTION")
    add = users.add_parser(
        "add", parents=[common], help="add a user (asks for a password; empty: API keys only)"
    )
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="the user sees every user's tasks")
    add.set_defaults(run=cmd_users_add)
    passwd = users.add_parser(
        "passwd", parents=[common], help="set a user's password (ends their dashboard sessions)"
    )
    passwd.add_argument("name")
    passwd.set_defaults(run=cmd_users_passwd)
    ulist = users.add_parser("list", parents=[common], help="list users")
    ulist.set_defaults(run=cmd_users_list)
    for action, help_text in (
        ("disable", "stop a user's sign-ins, sessions and stored keys"),
        ("enable", "undo disable"),
        ("remove", "delete a user with their keys and sessions (their videos stay)"),
    ):
        one = users.add_parser(action, parents=[common], help=help_text)
        one.add_argument("name")
        one.set_defaults(run=cmd_users_change, action=action)

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


def read_password(name: str) -> str | None:
    """The new password for `name` (None: no password), from the terminal or one stdin line."""
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass(f"Password for {name} (empty: API keys only): ")
        if first and getpass.getpass("Again: ") != first:
            raise _Refused("the two passwords differ")
    else:
        try:
            first = sys.stdin.readline() if sys.stdin is not None else ""
        except (OSError, ValueError):  # no readable standard input: no password
            first = ""
        first = first.rstrip("\r\n")
    if not first:
        return None
    why = passwords.weakness(first)
    if why:
        raise _Refused(why)
    return first


def _ask(name: str) -> tuple[str | None, int]:
    """(the hash of the new password or None, 0), or (None, exit code) when it is refused."""
    try:
        password = read_password(name)
    except _Refused as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return None, 2
    except EOFError:
        return None, 1
    return (passwords.hash_password(password) if password else None), 0


def cmd_users_add(args: argparse.Namespace) -> int:
    if config_mod.invalid_name(args.name):
        print("relay: a user name is letters, digits, '_', '.', '-' (at most 64)", file=sys.stderr)
        return 2

    async def work(store: Store) -> int:
        if await store.get_user(args.name):
            print(f"relay: user {args.name!r} exists already", file=sys.stderr)
            return 1
        hashed, code = _ask(args.name)  # a CLI may block its own loop on the terminal
        if code:
            return code
        role = "admin" if args.admin else "user"
        user = await store.add_user(args.name, role, time.time(), password_hash=hashed)
        how = "with a password" if hashed else "without a password (API keys only)"
        print(f"added {user.role} {user.name} {how}")
        return 0

    return int(with_store(args, work))


def cmd_users_passwd(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        if await store.get_user(args.name) is None:
            print(f"relay: no user {args.name!r}", file=sys.stderr)
            return 2
        hashed, code = _ask(args.name)
        if code:
            return code
        if not await store.set_password(args.name, hashed):
            print(f"relay: no user {args.name!r}", file=sys.stderr)
            return 2
        what = "changed" if hashed else "removed (API keys only)"
        print(f"password of {args.name} {what}; their dashboard sessions ended")
        return 0

    return int(with_store(args, work))


def cmd_users_list(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        rows = [("NAME", "ROLE", "DISABLED", "CREATED")]
        for user in await store.list_users():
            disabled = "yes" if user.disabled else "no"
            rows.append((user.name, user.role, disabled, date(user.created_at)))
        table(rows)
        return 0

    return int(with_store(args, work))


def cmd_users_change(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        change = {
            "disable": (store.disable_user, "disabled {}: no sign-in, sessions ended, keys off"),
            "enable": (store.enable_user, "enabled {}"),
            "remove": (store.remove_user, "removed {} with their keys (their videos stay)"),
        }
        method, done = change[args.action]
        if not await method(args.name):
            print(f"relay: no user {args.name!r}", file=sys.stderr)
            return 2
        print(done.format(args.name))
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
            return 2
        key = new_api_key()
        key_id = await store.add_key(
            user.id, args.name, display_prefix(key), digest(key), time.time()
        )
        print(key)
        print(f"key {key_id} for {user.name}: shown once, keep it safe", file=sys.stderr)
        return 0

    return int(with_store(args, work))


def cmd_keys_list(args: argparse.Namespace) -> int:
    """The stored keys, then the config file's static keys by name (never their values)."""
    static = [k for k in load(args, secrets=False).keys if args.user in (None, k.user)]

    async def work(store: Store) -> int:
        rows = [("ID", "USER", "NAME", "PREFIX", "CREATED", "STATUS")]
        for key in await store.list_keys(args.user):
            status = f"revoked {date(key.revoked_at)}" if key.revoked_at else "active"
            rows.append(
                (
                    str(key.id),
                    key.user,
                    key.name or "-",
                    f"{key.prefix}...",
                    date(key.created_at),
                    status,
                )
            )
        for static_key in static:
            rows.append(
                ("-", static_key.user, static_key.name, "-", "-", f"config ({static_key.role})")
            )
        table(rows)
        return 0

    return int(with_store(args, work))


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        if await store.revoke_key(args.key_id, time.time()):
            print(f"revoked key {args.key_id}")
            return 0
        print(f"relay: no active key with id {args.key_id}", file=sys.stderr)
        return 2

    return int(with_store(args, work))
