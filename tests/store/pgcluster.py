"""A throwaway PostgreSQL server for the tests, from the distribution's own binaries (Debian's
`postgresql` package: /usr/lib/postgresql/<version>/bin): `initdb` into a temporary directory,
one `postgres` process on a free 127.0.0.1 port, with TLS on (a self-signed certificate, so
`?sslmode=` can be tested), durability off (it is thrown away), trust authentication for the
superuser `postgres` and passwords for every other role. A fresh database per test comes from
`create_database`.

initdb refuses to run as root, so as root the server runs as the `postgres` system user the
package creates (or `nobody`), through subprocess's `user=`/`group=`; the temporary directory is
handed to that user.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# set (to anything): a missing PostgreSQL (or asyncpg) fails the postgres tests instead of
# skipping them; .ci/run sets it, so CI always runs both backends
REQUIRE_ENV = "RELAY_TEST_REQUIRE_POSTGRES"
BINDIR_ENV = "RELAY_TEST_PG_BINDIR"
SUPERUSER = "postgres"
START_TIMEOUT_S = 30


def find_bindir() -> Path | None:
    """Where initdb and postgres are: $RELAY_TEST_PG_BINDIR when set (a build of one's own),
    else the newest /usr/lib/postgresql/<version>/bin (Debian, Ubuntu), else the directory of
    an `initdb` on PATH (Fedora, Homebrew, ...)."""
    if chosen := os.environ.get(BINDIR_ENV):
        return Path(chosen) if (Path(chosen) / "initdb").exists() else None
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)],
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def missing() -> str | None:
    """Why the postgres tests cannot run here, or None when they can."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg is not installed (pip install -e '.[test]')"
    if find_bindir() is None:
        where = os.environ.get(BINDIR_ENV) or "/usr/lib/postgresql/*/bin or on PATH"
        return f"PostgreSQL is not installed (no initdb in {where}; apt-get install postgresql)"
    if shutil.which("openssl") is None:
        return "openssl is not installed (the test server's TLS certificate)"
    return None


def _server_user() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root; None: run it as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root, and no 'postgres' or 'nobody' user to run PostgreSQL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the server's process before exec: if pytest is killed, the server goes with it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGQUIT)  # PR_SET_PDEATHSIG; SIGQUIT: PostgreSQL's immediate stop


class Cluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.user = _server_user()
        self.dir = Path(tempfile.mkdtemp(prefix="relay-pg-"))
        self.data = self.dir / "data"
        self.cert = self.dir / "server.crt"
        self.log = self.dir / "server.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.settings: dict[str, str] = {}  # more server settings, over the defaults below

    def _as_server(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        uid, gid = self.user
        return {"user": uid, "group": gid, "extra_groups": []}

    def _chown(self, *paths: Path) -> None:
        if self.user is not None:
            for path in paths:
                os.chown(path, *self.user)

    def start(self) -> None:
        try:
            self._init()
            for _ in range(5):  # another process may take the free port before the server does
                self.port = _free_port()
                if self._run():
                    return
            raise RuntimeError(f"PostgreSQL did not start:\n{self.log.read_text()[-2000:]}")
        except BaseException:
            self.stop()
            raise

    def _init(self) -> None:
        self._chown(self.dir)
        subprocess.run(
            [
                self.bindir / "initdb",
                "-D",
                self.data,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            cwd=self.dir,
            **self._as_server(),
        )
        # the superuser needs no password; any other role must give its own, so a wrong
        # password can be tested
        hba = self.data / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            f"host all {SUPERUSER} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        self._chown(hba)
        key = self.dir / "server.key"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                key,
                "-out",
                self.cert,
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        key.chmod(0o600)
        self._chown(key, self.cert)

    def _run(self) -> bool:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "ssl": "on",
            "ssl_cert_file": str(self.cert),
            "ssl_key_file": str(self.dir / "server.key"),
            **self.settings,
        }
        args: list[str | Path] = [self.bindir / "postgres", "-D", self.data, "-p", str(self.port)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.dir,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                **self._as_server(),
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            ready = subprocess.run(
                [self.bindir / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                return True
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        self.process = None
        return False

    def url(self, database: str, **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}" + (
            f"?{query}" if query else ""
        )

    def create_database(self, name: str) -> None:
        self._client("createdb", name)

    def drop_database(self, name: str) -> None:
        self._client("dropdb", "--force", "--if-exists", name)

    def _client(self, program: str, *args: str) -> None:
        # the client programs, not asyncpg: fixtures call these inside and outside event loops
        subprocess.run(
            [
                self.bindir / program,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                *args,
            ],
            check=True,
            capture_output=True,
        )

    def halt(self) -> None:
        """Stop the server (a fast shutdown, as a restart does), keeping its data."""
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
            self.process = None

    def resume(self) -> None:
        """Start it again on the same port."""
        if not self._run():
            raise RuntimeError(f"PostgreSQL did not start again:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)
