"""`relay backup` as an operator runs it: while `relay serve` goes on creating tasks, from cron
without the provider secrets, into a directory; and the README's restore of that copy."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from tests.test_serve import KEY, free_port, get, wait_for, write_config
from tests.test_storage_failures import PYTHON, make_database


def create(base: str, prompt: str) -> str:
    import json
    import urllib.request

    req = urllib.request.Request(
        f"{base}/v1/videos",
        data=json.dumps({"model": "sora-2", "prompt": prompt}).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.loads(resp.read())["id"])


def ids_in(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {row[0] for row in db.execute("SELECT id FROM tasks")}
    finally:
        db.close()


def serve(conf: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*PYTHON, "serve", "--config", str(conf)],
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        env={"TEST_RELAY_KEY": KEY, "PATH": "/usr/bin"},
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def unlimited_config(conf: Path, port: int, data: Path) -> None:
    write_config(conf, port, data, '["sora-2"]')
    with conf.open("a") as fh:
        fh.write("\n[limits]\nrequests_per_minute = 0\n")


def test_backup_while_the_relay_runs_and_the_restore_of_the_readme(tmp_path: Path):
    port = free_port()
    data = tmp_path / "data"
    conf = tmp_path / "config.toml"
    unlimited_config(conf, port, data)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    relay = serve(conf, log)
    writing = threading.Event()
    during: list[str] = []
    failures: list[BaseException] = []
    try:
        wait_for(lambda: get(f"{base}/healthz", None)[0] == 200)
        before = {create(base, f"before {i}") for i in range(20)}

        def keep_creating() -> None:
            try:
                while not writing.is_set():
                    during.append(create(base, "during"))
            except BaseException as exc:
                failures.append(exc)

        writer = threading.Thread(target=keep_creating)
        writer.start()
        try:
            time.sleep(0.2)
            done = subprocess.run(
                [*PYTHON, "backup", "--config", str(conf), str(tmp_path / "backup.db")],
                capture_output=True,
                text=True,
                env={"TEST_RELAY_KEY": KEY, "PATH": "/usr/bin"},
                timeout=60,
                check=False,
            )
        finally:
            writing.set()
            writer.join()
        assert done.returncode == 0, done.stderr
        assert not failures, failures
        said = done.stdout.strip()
        assert str((data / "relay.db").absolute()) in said, said  # which database
        assert str((tmp_path / "backup.db").absolute()) in said, said  # and where
        assert during, "the relay went on creating while the backup ran"

        backup = tmp_path / "backup.db"
        assert os.stat(backup).st_mode & 0o777 == 0o600
        copy = sqlite3.connect(backup)
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        copy.close()
        saved = ids_in(backup)
        assert before <= saved <= ids_in(data / "relay.db")
        assert saved & set(during), "the relay wrote while the backup process ran"
        lost = create(base, "after the backup")  # only in the live database
    finally:
        stop(relay)

    # the README's restore: stop, delete -wal and -shm, copy the backup over the database, start
    for suffix in ("-wal", "-shm"):
        (data / f"relay.db{suffix}").unlink(missing_ok=True)
    shutil.copyfile(tmp_path / "backup.db", data / "relay.db")
    relay = serve(conf, log)
    try:
        wait_for(lambda: get(f"{base}/healthz", None)[0] == 200)
        for video_id in before:
            status, body = get(f"{base}/v1/videos/{video_id}")
            assert status == 200 and body["id"] == video_id
        assert get(f"{base}/v1/videos/{lost}")[0] == 404
        assert ids_in(data / "relay.db") >= saved
    finally:
        stop(relay)
    assert KEY not in log.read_text()


def test_backup_names_a_missing_database_and_refuses_the_live_file_without_secrets(
    tmp_path: Path,
):
    data = tmp_path / "data"
    conf = tmp_path / "config.toml"
    write_config(conf, free_port(), data, '["sora-2"]')

    def backup(target: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PYTHON, "backup", "--config", str(conf), str(target)],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin"},  # as from cron: no secrets the config names
            timeout=60,
            check=False,
        )

    missing = backup(tmp_path / "b.db")
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and str(data / "relay.db") in missing.stderr
    make_database(data / "relay.db", tasks=3)
    same = backup(data / "relay.db")
    assert same.returncode == 2 and "live database" in same.stderr
    into_dir = backup(tmp_path)
    assert into_dir.returncode == 0, into_dir.stderr
    made = list(tmp_path.glob("relay-*.db"))
    assert len(made) == 1 and ids_in(made[0]) == {f"video_{i:06d}" for i in range(3)}
    assert "3 tasks" in into_dir.stdout
