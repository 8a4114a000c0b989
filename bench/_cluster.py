"""Pieces of the scale-out benchmark (scaleout.py) that span several processes: N relays on one
store, nginx balancing round-robin over them, CPU of a process tree and of the whole machine over
a window, a disk fsync probe, the relays' poll counts from /metrics, and a table with one column
per setup.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from _common import (
    CLK_TCK,
    HOST,
    RelayProc,
    Section,
    cpu_seconds,
    free_port,
    relay,
    stop,
    wait_port,
)
from _nginx import binary
from spy import profiled


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a server and its direct children (PostgreSQL's backends,
    nginx's workers): the live ones from /proc, the ones that exited from the parent's
    cutime/cstime. Differences over a window are exact as long as no pid is reused."""
    with open(f"/proc/{pid}/stat") as fh:
        rest = fh.read().rsplit(")", 1)[1].split()
    total = sum(int(x) for x in rest[11:15]) / CLK_TCK  # utime stime cutime cstime
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or entry.name == str(pid):
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, every process: /proc/stat's first
    line less idle and iowait)."""
    with open("/proc/stat") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK


BALANCER = """\
user root;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream relays {{
{servers}
        keepalive 64;
    }}
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://relays;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


@dataclass
class Balancer:
    port: int
    pid: int  # the master process; its workers are its children
    workers: int


@contextlib.contextmanager
def balancer(prefix: Path, ports: list[int], workers: int = 1) -> Iterator[Balancer | None]:
    """nginx as a round-robin load balancer (keep-alive to every upstream) in front of the
    relays on `ports`, or None when nginx is not installed."""
    exe = binary()
    if exe is None:
        yield None
        return
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n".join(f"        server {HOST}:{p};" for p in ports)
    conf = prefix / "nginx.conf"
    conf.write_text(
        BALANCER.format(prefix=prefix, host=HOST, port=port, servers=servers, workers=workers)
    )
    proc = subprocess.Popen(
        [
            *(exe, "-p", str(prefix), "-c", str(conf)),
            *("-e", str(prefix / "error.log"), "-g", "daemon off;"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc=proc)
        yield Balancer(port, proc.pid, workers)
    finally:
        stop(proc, 10)


class Grid:
    """Rows of one value per setup, printed as aligned columns in one Section."""

    def __init__(self, section: Section, labels: list[str]) -> None:
        self.section = section
        self.labels = labels
        self.rows: list[tuple[str, list[str], str, bool | None]] = []

    def add(
        self, measure: str, values: list[str], target: str = "", ok: bool | None = None
    ) -> None:
        self.rows.append((measure, values, target, ok))

    def emit(self) -> Section:
        widths = [
            max(len(label), *(len(v[i]) for _, v, _, _ in self.rows))
            for i, label in enumerate(self.labels)
        ]

        def line(values: list[str]) -> str:
            return "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))

        self.section.add("setup", line(self.labels))
        for name, values, target, ok in self.rows:
            self.section.add(name, line(values), target, ok)
        return self.section


def pct(x: float) -> str:
    return f"{x:.0%}"


@contextlib.contextmanager
def relays(
    work: Path,
    count: int,
    *,
    api_port: int,
    store: str | None,
    polling: Mapping[str, float] | None = None,
) -> Iterator[list[RelayProc]]:
    """`count` relays on one store, each with its own data dir, all up."""
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(
                relay(
                    work,
                    api_port=api_port,
                    polling=dict(polling) if polling else None,
                    data_dir=work / f"data-{i}",
                    store=store,
                )
            )
            for i in range(count)
        ]
        yield procs


@contextlib.contextmanager
def profiles(procs: list[RelayProc], name: str) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for i, r in enumerate(procs):
            stack.enter_context(profiled(r.pid, f"{name}-relay{i}" if len(procs) > 1 else name))
        yield


class CpuWindow:
    """CPU seconds of named readers between start() and stop(), as shares of one core."""

    def __init__(self, readers: dict[str, Callable[[], float]]) -> None:
        self.readers = readers
        self.share: dict[str, float] = {}

    def __enter__(self) -> CpuWindow:
        self._t0 = time.perf_counter()
        self._at0 = {k: f() for k, f in self.readers.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self._t0
        self.share = {k: (f() - self._at0[k]) / elapsed for k, f in self.readers.items()}


class FsyncProbe:
    """A 4 KiB write + fsync into a file every 100 ms on a thread, while the block runs: the
    slowest one shows whether the disk stalled (every commit of SQLite's synchronous=FULL and
    of PostgreSQL's synchronous_commit waits for one)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "fsync-probe"
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        block = b"\0" * 4096
        with self.path.open("wb") as fh:
            while not self._stop.wait(0.1):
                t0 = time.perf_counter()
                fh.write(block)
                fh.flush()
                os.fsync(fh.fileno())
                self.worst = max(self.worst, time.perf_counter() - t0)

    def __enter__(self) -> FsyncProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_of(pid: int) -> Callable[[], float]:
    return lambda: cpu_seconds(pid)


def children_cpu() -> float:
    """CPU of this process's reaped children (the wrk runs)."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def poll_counts(procs: list[RelayProc]) -> list[int]:
    """How many polls each relay has run (its relay_poll_lag_seconds_count, all channels)."""
    counts = []
    for r in procs:
        client = r.client()
        status_code, body = client.call("GET", "/metrics")
        client.close()
        if status_code != 200:
            raise RuntimeError(f"/metrics answered {status_code}")
        counts.append(
            int(
                sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in body.decode().splitlines()
                    if line.startswith("relay_poll_lag_seconds_count")
                )
            )
        )
    return counts
