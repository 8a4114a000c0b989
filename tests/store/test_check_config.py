"""`relay check-config` reaches what the config names: the database (SQLite: could it be
created; PostgreSQL: connect and migrate) and the S3 bucket (reach and write), each problem on
its own line naming its key, exit 2, and never a password. `--offline` checks the file only."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from relay import cli
from tests.s3server import S3Server, s3_server  # noqa: F401 - the session fixture

KEY = "sk-check-config-0123456789"


def write(tmp_path: Path, store_url: str | None = None, storage: str = "") -> Path:
    path = tmp_path / "config.toml"
    store = f'[store]\nurl = "{store_url}"\n' if store_url else ""
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n{store}{storage}\n'
        f'[[keys]]\nname = "me"\nuser = "me"\nkey = "{KEY}"\n'
        '[[channels]]\nname = "demo"\nprovider = "demo"\nmodels = ["sora-2"]\n'
    )
    return path


def s3_table(server: S3Server, **change: str) -> str:
    s3 = {**server.storage()["s3"], **change}  # type: ignore[dict-item]
    lines = "".join(
        f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}\n" for k, v in s3.items()
    )
    return f'[storage]\nbackend = "s3"\n[storage.s3]\n{lines}'


def run(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = cli.main(["check-config", "--config", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sqlite_is_checked_without_creating_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    code, out, err = run(write(tmp_path), capsys)
    assert code == 0, err
    assert (
        f"store sqlite:///{tmp_path}/data/relay.db and storage {tmp_path}/data/videos: reached"
        in out
    )
    assert not (tmp_path / "data").exists()  # serve creates it; the check only looks


def test_a_sqlite_path_under_a_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "plain").write_text("not a folder")
    code, out, err = run(write(tmp_path, f"sqlite:///{tmp_path}/plain/relay.db"), capsys)
    assert code == 2 and out == ""
    assert f"store.url: {tmp_path}/plain is a file, not a folder" in err


def test_a_data_dir_that_is_a_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "data").write_text("not a folder")
    code, out, err = run(write(tmp_path, f"sqlite:///{tmp_path}/relay.db"), capsys)
    assert code == 2 and out == ""
    assert f"server.data_dir: {tmp_path}/data is a file, not a folder" in err


def test_postgresql_reached_and_its_tables_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
):
    code, out, err = run(write(tmp_path, postgres_url), capsys)
    assert code == 0, err
    where = postgres_url.split("@", 1)[1]
    assert f"store postgresql://{where} and storage {tmp_path}/data/videos: reached" in out


async def test_a_wrong_postgresql_password_is_named_and_not_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
):
    import asyncpg

    con = await asyncpg.connect(postgres_url)
    try:
        await con.execute("DROP ROLE IF EXISTS checker")
        await con.execute("CREATE ROLE checker LOGIN PASSWORD 'Right-Passw0rd'")
    finally:
        await con.close()
    parts = urlsplit(postgres_url)
    wrong = "Wrong-Passw0rd-Here"
    url = urlunsplit(parts._replace(netloc=f"checker:{wrong}@{parts.hostname}:{parts.port}"))
    code, out, err = await asyncio.to_thread(run, write(tmp_path, url), capsys)
    assert code == 2 and out == ""
    assert "store.url: cannot open the database at" in err
    assert 'password authentication failed for user "checker"' in err
    assert wrong not in err


def test_a_postgresql_nobody_answers_on_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    port = closed_port()
    url = f"postgresql://relay:S3cret-Value@127.0.0.1:{port}/relay"
    code, out, err = run(write(tmp_path, url), capsys)
    assert code == 2 and out == ""
    assert f"store.url: cannot open the database at postgresql://127.0.0.1:{port}/relay" in err
    assert "S3cret-Value" not in err
    # the file itself is fine: --offline says so without reaching anything
    code, out, err = run(write(tmp_path, url), capsys, "--offline")
    assert code == 0, err
    assert "reached" not in out


def test_the_bucket_is_reached_and_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    s3_server: S3Server,  # noqa: F811
):
    code, out, err = run(write(tmp_path, storage=s3_table(s3_server)), capsys)
    assert code == 0, err
    assert f"storage s3 bucket 'relay-test' at {s3_server.endpoint}: reached" in out


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"bucket": "no-such-bucket"}, "storage.s3: bucket 'no-such-bucket' does not exist"),
        ({"secret_key": "Wrong-Secret-Key"}, "storage.s3: the bucket refused the credentials"),
    ],
)
def test_bucket_problems_are_named(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    s3_server: S3Server,  # noqa: F811
    change: dict[str, str],
    problem: str,
):
    code, out, err = run(write(tmp_path, storage=s3_table(s3_server, **change)), capsys)
    assert code == 2 and out == ""
    assert problem in err
    assert "Wrong-Secret-Key" not in err and s3_server.secret_key not in err


def test_an_endpoint_nobody_answers_on_is_named(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    s3_server: S3Server,  # noqa: F811
):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    code, out, err = run(write(tmp_path, storage=s3_table(s3_server, endpoint=endpoint)), capsys)
    assert code == 2 and out == ""
    assert (
        f"storage.s3: could not reach the bucket (ClientConnectorError) (endpoint {endpoint})"
        in err
    )
