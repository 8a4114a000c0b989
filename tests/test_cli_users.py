"""`relay users`: passwords from a terminal or standard input, the table, disable, remove."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from relay import passwords
from relay.cli import main
from relay.store import Store, open_store, sqlite_url


@pytest.fixture
def conf(tmp_path: Path) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n'
        '[[channels]]\nname = "demo"\nprovider = "demo"\nmodels = ["sora-2"]\n'
    )
    return ["--config", str(path)]


def stdin(monkeypatch: pytest.MonkeyPatch, text: str, *, tty: bool = False) -> None:
    fake = io.StringIO(text)
    fake.isatty = lambda: tty  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stdin", fake)


def in_store(tmp_path: Path, work: object) -> object:
    async def run() -> object:
        store: Store = await open_store(sqlite_url(tmp_path / "data" / "relay.db"))
        try:
            return await work(store)  # type: ignore[operator]
        finally:
            await store.close()

    return asyncio.run(run())


def hash_of(tmp_path: Path, name: str) -> str | None:
    async def get(store: Store) -> str | None:
        return await store.password_hash(name)

    return in_store(tmp_path, get)  # type: ignore[return-value]


def test_add_reads_one_line_of_standard_input(
    conf: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    stdin(monkeypatch, "s3cret password\nignored second line\n")
    assert main(["users", "add", "gina", "--admin", *conf]) == 0
    assert "added admin gina with a password" in capsys.readouterr().out
    stored = hash_of(tmp_path, "gina")
    assert stored is not None and stored.startswith("scrypt$")
    assert passwords.verify("s3cret password", stored)  # spaces kept, the newline not


def test_an_empty_password_means_api_keys_only(
    conf: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    stdin(monkeypatch, "")
    assert main(["users", "add", "hank", *conf]) == 0
    assert "without a password (API keys only)" in capsys.readouterr().out
    assert hash_of(tmp_path, "hank") is None


def test_a_short_password_is_refused(
    conf: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    stdin(monkeypatch, "short\n")
    assert main(["users", "add", "ivy", *conf]) == 2
    assert "at least 8 characters" in capsys.readouterr().err

    async def user(store: Store) -> object:
        return await store.get_user("ivy")

    assert in_store(tmp_path, user) is None  # nothing was added


def test_on_a_terminal_the_password_is_asked_twice_without_echo(
    conf: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    stdin(monkeypatch, "", tty=True)
    answers = iter(["terminal-pass-1", "terminal-pass-1", "first-attempt-1", "other-attempt-2"])
    prompts: list[str] = []

    def getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", getpass)
    assert main(["users", "add", "jack", *conf]) == 0
    assert prompts[0].startswith("Password for jack") and prompts[1] == "Again: "
    assert passwords.verify("terminal-pass-1", hash_of(tmp_path, "jack"))
    assert main(["users", "passwd", "jack", *conf]) == 2
    assert "differ" in capsys.readouterr().err
    assert passwords.verify("terminal-pass-1", hash_of(tmp_path, "jack"))  # unchanged


def test_passwd_changes_and_removes(
    conf: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    stdin(monkeypatch, "first-password\n")
    main(["users", "add", "kim", *conf])
    stdin(monkeypatch, "second-password\n")
    assert main(["users", "passwd", "kim", *conf]) == 0
    assert "sessions ended" in capsys.readouterr().out
    assert passwords.verify("second-password", hash_of(tmp_path, "kim"))
    stdin(monkeypatch, "\n")
    assert main(["users", "passwd", "kim", *conf]) == 0
    assert "removed (API keys only)" in capsys.readouterr().out
    assert hash_of(tmp_path, "kim") is None
    assert main(["users", "passwd", "nobody", *conf]) == 2


def test_list_disable_enable_remove(
    conf: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    stdin(monkeypatch, "")
    main(["users", "add", "lee", "--admin", *conf])
    main(["users", "add", "a-much-longer-name", *conf])
    capsys.readouterr()
    assert main(["users", "disable", "lee", *conf]) == 0
    assert "disabled lee" in capsys.readouterr().out
    assert main(["users", "list", *conf]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "DISABLED", "CREATED"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["lee"][1:3] == ["admin", "yes"] and rows["a-much-longer-name"][1:3] == [
        "user",
        "no",
    ]
    assert all(line.index(line.split()[1]) == lines[0].index("ROLE") for line in lines)  # aligned
    assert main(["users", "enable", "lee", *conf]) == 0
    assert main(["users", "remove", "lee", *conf]) == 0
    assert "their videos stay" in capsys.readouterr().out
    assert main(["users", "remove", "lee", *conf]) == 2  # an unknown user: the operator's slip
    assert main(["users", "disable", "lee", *conf]) == 2
    main(["users", "list", *conf])
    assert "lee " not in capsys.readouterr().out
