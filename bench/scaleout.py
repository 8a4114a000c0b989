"""Benchmark 7: several relays on one PostgreSQL, beside one relay on SQLite, in one run.

One throwaway PostgreSQL (tests/store/pgcluster.py's cluster, durable: fsync and
synchronous_commit on, as SQLite runs synchronous=FULL; TLS off, the relays are on the same
host) serves every PostgreSQL column; each setup gets a fresh database made by the relay's own
migrations, a fresh fake upstream and fresh relays (`relay serve`, each with its own data dir).

1. The poller with 10,000 running tasks, as bench/polling.py: the rows are written straight into
   the database once the relays are up (SQLite: sqlite3 executemany; PostgreSQL: COPY, then
   ANALYZE), `in_progress`, due evenly over a 60 s window with `poll_interval` 60 s (167
   polls/s); the fake answers each poll after 200 ms and records its arrival. Settings:
   interval_s 5, max_interval_s 60, concurrency 64 (per relay). Lag = a task's first poll's
   arrival - its next_poll_at. Doubled polls: tasks polled more than once before due + 30 s (the
   next legitimate poll is due + 60 s; a lease is 60 s): must be 0. Polls per relay come from
   each relay's /metrics (relay_poll_lag_seconds_count). CPU from /proc over the window: each
   relay, PostgreSQL's postmaster and backends, the fake upstream.
2. Status reads (`GET /v1/videos/{id}` of one running task), as bench/status.py: wrk, 32
   connections, after a 1 s warm-up. Three relays are read two ways: through nginx as a
   round-robin load balancer (1 worker, keep-alive upstreams; wrk -t2 -c32 against it), and
   with one wrk per relay at once (-t1, 11+11+10 connections; requests/s summed, the worst
   p99).
3. Create overhead, as bench/create.py: creates alternating between a relay and the fake
   upstream itself; relay p50/p99 minus upstream p50/p99.

    .venv/bin/python bench/scaleout.py [--quick]   (--quick: 2,000 tasks over 12 s, 3 s reads,
                                                     100 creates)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polling
import status
from _cluster import (
    CpuWindow,
    FsyncProbe,
    Grid,
    balancer,
    children_cpu,
    cpu_of,
    machine_busy_seconds,
    pct,
    poll_counts,
    profiles,
    relays,
    tree_cpu_seconds,
)
from _common import (
    HOST,
    Client,
    RelayProc,
    Section,
    cli,
    cpu_seconds,
    create_video,
    fmt_ms,
    free_port,
    helper,
    percentile,
    tool,
    workdir,
)
from _postgres import Postgres, insert_tasks, missing, postgres, transactions
from create import measure

NUMBER = 7
INSTANCES = 3
POLLING = polling.POLLING
DELAY_S = polling.DELAY_S
LEAD_S = 4.0  # from writing the rows to the window's start
GRACE_S = 10.0
SAME_LEASE_S = 30.0  # a second poll of a task before due + this is a doubled poll
LAG_TARGET_S = 1.0
CONNECTIONS = status.CONNECTIONS


@dataclass
class Setup:
    label: str
    relays: int
    pg: bool


SETUPS = (
    Setup("SQLite, 1 relay", 1, False),
    Setup("PG, 1 relay", 1, True),
    Setup(f"PG, {INSTANCES} relays", INSTANCES, True),
)


# --- 1. the poller ------------------------------------------------------------------------------


@dataclass
class PollResult:
    count: int
    polled: int = 0
    doubled: int = 0
    rate: float = 0.0
    p50: float = float("nan")
    p99: float = float("nan")
    worst: float = float("nan")
    relay_cpu: list[float] = field(default_factory=list)
    pg_cpu: float | None = None
    fake_cpu: float = 0.0
    machine: float = 0.0
    per_relay: list[int] = field(default_factory=list)
    insert_s: float = 0.0
    xacts: int | None = None  # PostgreSQL transactions over the same span as per_relay
    fsync_worst: float = 0.0


def poll_setup(
    work: Path, setup: Setup, pg: Postgres | None, count: int, window: float
) -> PollResult:
    result = PollResult(count)
    api_port = free_port()
    url = None
    if setup.pg:
        assert pg is not None
        url = pg.database(f"poll{setup.relays}")
    else:
        polling.make_database(work / "data-0")
    with (
        helper(
            "fake_api.py",
            "--poll-delay",
            str(DELAY_S),
            "--record",
            port=api_port,
            log=work / "fake.log",
        ) as fake_proc,
        relays(work, setup.relays, api_port=api_port, store=url, polling=POLLING) as procs,
    ):
        opens = time.time() + LEAD_S
        t0 = time.perf_counter()
        if url is not None:
            due = {f"video_up{i:06d}": opens + window * (i + 0.5) / count for i in range(count)}
            insert_tasks(url, due)
        else:
            due = polling.insert_tasks(work / "data-0" / "relay.db", count, opens, window)
        result.insert_s = time.perf_counter() - t0
        before = poll_counts(procs)
        xacts0 = transactions(url) if url else 0
        time.sleep(max(0.0, opens - time.time()))
        readers = {f"relay{i}": cpu_of(r.pid) for i, r in enumerate(procs)}
        readers["fake"] = lambda: cpu_seconds(fake_proc.pid)
        readers["machine"] = machine_busy_seconds
        if pg is not None:
            readers["pg"] = lambda: tree_cpu_seconds(pg.pid)
        name = f"scaleout-poll-{'pg' if setup.pg else 'sqlite'}{setup.relays}"
        with profiles(procs, name), CpuWindow(readers) as cpu, FsyncProbe(work) as probe:
            time.sleep(window)
        fake = Client(api_port)
        deadline = time.time() + GRACE_S
        while True:
            _, polls = fake.json("GET", "/_bench/polls")
            first: dict[str, float] = {}
            for upstream_id, at in polls:
                first.setdefault(upstream_id, at)
            if len(first.keys() & due.keys()) >= count or time.time() > deadline:
                break
            time.sleep(0.5)
        fake.close()
        time.sleep(DELAY_S + 0.5)  # a relay counts a poll when its answer is in
        after = poll_counts(procs)
        if url:
            result.xacts = transactions(url) - xacts0
    result.relay_cpu = [cpu.share[f"relay{i}"] for i in range(setup.relays)]
    result.fake_cpu = cpu.share["fake"]
    result.machine = cpu.share["machine"]
    result.fsync_worst = probe.worst
    result.pg_cpu = cpu.share.get("pg") if setup.pg else None
    result.per_relay = [b - a for a, b in zip(before, after, strict=True)]
    lags = [first[k] - due[k] for k in due if k in first]
    result.polled = len(lags)
    if lags:
        result.p50, result.p99, result.worst = (
            percentile(lags, 50),
            percentile(lags, 99),
            max(lags),
        )
    seen: dict[str, int] = {}
    in_window = 0
    for upstream_id, at in polls:
        planned = due.get(upstream_id)
        if planned is None:
            continue
        if at < planned + SAME_LEASE_S:
            seen[upstream_id] = seen.get(upstream_id, 0) + 1
        if opens <= at < opens + window:
            in_window += 1
    result.doubled = sum(1 for n in seen.values() if n > 1)
    result.rate = in_window / window
    return result


def poller_section(pg: Postgres | None, quick: bool, skip: str | None) -> Section:
    count, window = (2_000, 12.0) if quick else (10_000, 60.0)
    section = Section(NUMBER, f"poller, {count:,} tasks, 200 ms upstream")
    results: list[PollResult | None] = []
    for setup in SETUPS:
        if setup.pg and skip:
            results.append(None)
            continue
        print(f"  poller: {setup.label} ...", flush=True)
        with workdir("scaleout-poll") as work:
            results.append(poll_setup(work, setup, pg, count, window))
    grid = Grid(section, [s.label for s in SETUPS])

    def each(fn: Callable[[PollResult], str]) -> list[str]:
        return [fn(r) if r is not None else "skipped" for r in results]

    done = [r for r in results if r is not None]
    grid.add(
        "tasks polled",
        each(lambda r: f"{r.polled:,}/{r.count:,}"),
        f"{count:,}",
        all(r.polled == r.count for r in done),
    )
    grid.add(
        "doubled polls (tasks polled twice in a lease)",
        each(lambda r: f"{r.doubled}"),
        "0",
        all(r.doubled == 0 for r in done),
    )
    grid.add("polls/s in the window", each(lambda r: f"{r.rate:.0f}"), f"{count / window:.0f}")
    grid.add("lag p50", each(lambda r: fmt_ms(r.p50)))
    last = results[-1]
    grid.add(
        "lag p99",
        each(lambda r: fmt_ms(r.p99)),
        f"<= 1 s ({INSTANCES} relays)",
        None if last is None else (last.polled == last.count and last.p99 <= LAG_TARGET_S),
    )
    grid.add("lag max", each(lambda r: fmt_ms(r.worst)))
    grid.add(
        "polls run by each relay (its /metrics)",
        each(lambda r: " / ".join(f"{n:,}" for n in r.per_relay)),
    )
    grid.add(
        "relay CPU, each (share of a core)",
        each(lambda r: " / ".join(pct(c) for c in r.relay_cpu)),
    )
    grid.add("relay CPU, all relays", each(lambda r: pct(sum(r.relay_cpu))))
    grid.add(
        "PostgreSQL CPU (postmaster + backends)",
        each(lambda r: pct(r.pg_cpu) if r.pg_cpu is not None else "-"),
    )
    grid.add(
        "PostgreSQL transactions per poll",
        each(lambda r: f"{r.xacts / sum(r.per_relay):.1f}" if r.xacts is not None else "-"),
    )
    grid.add("relays + PostgreSQL", each(lambda r: pct(sum(r.relay_cpu) + (r.pg_cpu or 0.0))))
    grid.add("fake upstream CPU", each(lambda r: pct(r.fake_cpu)))
    grid.add("whole machine busy (of 200%)", each(lambda r: pct(r.machine)))
    grid.add("slowest disk fsync (probe, every 100 ms)", each(lambda r: fmt_ms(r.fsync_worst)))
    grid.emit()
    section.notes.append(
        f"{count:,} in_progress rows written once the relays were up (SQLite: executemany,"
        f" PostgreSQL: COPY + ANALYZE), due evenly over {window:.0f} s ({count / window:.0f}"
        " polls/s), poll_interval 60 s; per relay: interval_s 5, max_interval_s 60,"
        " concurrency 64, pool_size 10 (PostgreSQL)"
    )
    section.notes.append(
        "lag = first poll's arrival at the fake - next_poll_at; a doubled poll = a task whose"
        f" polls before next_poll_at + {SAME_LEASE_S:.0f} s arrived more than once"
    )
    return section


# --- 2. status reads ----------------------------------------------------------------------------


@dataclass
class ReadResult:
    rps: float = 0.0
    p50: float = float("nan")
    p99: float = float("nan")
    bad: int = 0
    requests: int = 0
    relay_cpu: list[float] = field(default_factory=list)
    pg_cpu: float | None = None
    lb_cpu: float | None = None
    wrk_cpu: float = 0.0
    machine: float = 0.0
    xacts: int | None = None

    @property
    def measured(self) -> float:
        return sum(self.relay_cpu) + (self.pg_cpu or 0) + (self.lb_cpu or 0) + self.wrk_cpu


def read_load(
    wrk: str,
    targets: list[tuple[int, int, int]],
    path: str,
    duration: int,
) -> dict[str, float]:
    """wrk against each (port, threads, connections) at once; requests/s summed, the median
    p50 and the worst p99 of the runs."""
    results: list[dict[str, float]] = [{} for _ in targets]

    def one(i: int, port: int, threads: int, conns: int) -> None:
        results[i] = status.with_wrk(
            wrk, f"http://{HOST}:{port}{path}", duration, threads=threads, connections=conns
        )

    runs = [threading.Thread(target=one, args=(i, *target)) for i, target in enumerate(targets)]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    return {
        "rps": sum(r["rps"] for r in results),
        "p50": percentile([r["p50"] for r in results], 50),
        "p99": max(r["p99"] for r in results),
        "bad": sum(r["bad"] for r in results),
        "requests": sum(r["requests"] for r in results),
    }


def measure_reads(
    wrk: str,
    procs: list[RelayProc],
    pg: Postgres | None,
    targets: list[tuple[int, int, int]],
    path: str,
    duration: int,
    lb_pid: int | None,
    name: str,
    url: str | None,
) -> ReadResult:
    read_load(wrk, targets, path, 1)  # warm-up
    readers = {f"relay{i}": cpu_of(r.pid) for i, r in enumerate(procs)}
    readers["wrk"] = children_cpu
    readers["machine"] = machine_busy_seconds
    if pg is not None:
        readers["pg"] = lambda: tree_cpu_seconds(pg.pid)
    if lb_pid is not None:
        readers["lb"] = lambda: tree_cpu_seconds(lb_pid)
    xacts0 = transactions(url) if url else 0
    with profiles(procs, name), CpuWindow(readers) as cpu:
        load = read_load(wrk, targets, path, duration)
    if url:
        time.sleep(1.5)  # the backends report their counts about every second
    return ReadResult(
        xacts=transactions(url) - xacts0 if url else None,
        rps=load["rps"],
        p50=load["p50"],
        p99=load["p99"],
        bad=int(load["bad"]),
        requests=int(load["requests"]),
        relay_cpu=[cpu.share[f"relay{i}"] for i in range(len(procs))],
        pg_cpu=cpu.share.get("pg"),
        lb_cpu=cpu.share.get("lb"),
        wrk_cpu=cpu.share["wrk"],
        machine=cpu.share["machine"],
    )


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def reads_section(pg: Postgres | None, quick: bool, skip: str | None) -> Section:
    duration = 3 if quick else 10
    section = Section(NUMBER, f"status reads at {CONNECTIONS} connections")
    wrk = tool("wrk")
    labels = [
        "SQLite, 1 relay",
        "PG, 1 relay",
        f"PG, {INSTANCES} relays, nginx",
        f"PG, {INSTANCES} relays, {INSTANCES} wrk",
    ]
    results: list[ReadResult | None] = [None] * len(labels)
    if wrk is None:
        section.add("skipped", "wrk is not installed")
        return section
    for setup in SETUPS:
        if setup.pg and skip:
            continue
        print(f"  status reads: {setup.label} ...", flush=True)
        with workdir("scaleout-read") as work:
            api_port = free_port()
            url = pg.database(f"read{setup.relays}") if setup.pg and pg else None
            with (
                helper("fake_api.py", port=api_port, log=work / "fake.log"),
                relays(work, setup.relays, api_port=api_port, store=url) as procs,
            ):
                client = procs[0].client()
                video_id = create_video(client, "bench status=in_progress")
                client.close()
                path = f"/v1/videos/{video_id}"
                store_pg = pg if setup.pg else None
                tag = f"scaleout-read-{'pg' if setup.pg else 'sqlite'}{setup.relays}"
                if setup.relays == 1:
                    at = 0 if not setup.pg else 1
                    results[at] = measure_reads(
                        wrk,
                        procs,
                        store_pg,
                        [(procs[0].port, 2, CONNECTIONS)],
                        path,
                        duration,
                        None,
                        tag,
                        url,
                    )
                    continue
                with balancer(work / "nginx", [r.port for r in procs]) as lb:
                    if lb is not None:
                        results[2] = measure_reads(
                            wrk,
                            procs,
                            store_pg,
                            [(lb.port, 2, CONNECTIONS)],
                            path,
                            duration,
                            lb.pid,
                            f"{tag}-nginx",
                            url,
                        )
                conns = split(CONNECTIONS, len(procs))
                results[3] = measure_reads(
                    wrk,
                    procs,
                    store_pg,
                    [(r.port, 1, c) for r, c in zip(procs, conns, strict=True)],
                    path,
                    duration,
                    None,
                    f"{tag}-direct",
                    url,
                )
    grid = Grid(section, labels)

    def each(fn: Callable[[ReadResult], str]) -> list[str]:
        return [fn(r) if r is not None else "skipped" for r in results]

    grid.add("requests/s", each(lambda r: f"{r.rps:.0f}"))
    grid.add("latency p50", each(lambda r: fmt_ms(r.p50)))
    grid.add("latency p99 (3 wrk: the worst)", each(lambda r: fmt_ms(r.p99)))
    done = [r for r in results if r is not None]
    grid.add(
        "non-200 answers or socket errors",
        each(lambda r: f"{r.bad}"),
        "0",
        all(r.bad == 0 for r in done),
    )
    grid.add(
        "relay CPU, each (share of a core)",
        each(lambda r: " / ".join(pct(c) for c in r.relay_cpu)),
    )
    grid.add("relay CPU, all relays", each(lambda r: pct(sum(r.relay_cpu))))
    grid.add("PostgreSQL CPU", each(lambda r: pct(r.pg_cpu) if r.pg_cpu is not None else "-"))
    grid.add(
        "PostgreSQL transactions per read",
        each(lambda r: f"{r.xacts / r.requests:.2f}" if r.xacts is not None else "-"),
    )
    grid.add("nginx CPU", each(lambda r: pct(r.lb_cpu) if r.lb_cpu is not None else "-"))
    grid.add("wrk CPU", each(lambda r: pct(r.wrk_cpu)))
    grid.add("all of the above", each(lambda r: pct(r.measured)))
    grid.add("whole machine busy (of 200%)", each(lambda r: pct(r.machine)))
    grid.emit()
    spread = "+".join(str(c) for c in split(CONNECTIONS, INSTANCES))
    section.notes.append(
        f"GET /v1/videos/{{id}} of one running task, {duration} s after a 1 s warm-up; 1 relay:"
        f" wrk -t2 -c{CONNECTIONS} at it; nginx: wrk -t2 -c{CONNECTIONS} at one nginx worker"
        f" balancing round-robin over the {INSTANCES} relays (keep-alive upstreams);"
        f" {INSTANCES} wrk: one wrk -t1 per relay at once ({spread} connections), requests/s"
        " summed"
    )
    return section


# --- 3. create overhead -------------------------------------------------------------------------


def creates_section(pg: Postgres | None, quick: bool, skip: str | None) -> Section:
    count, warmup = (100, 20) if quick else (500, 20)
    section = Section(NUMBER, "create: relay vs straight to upstream")
    results: list[tuple[list[float], list[float]] | None] = []
    for setup in SETUPS[:2]:
        if setup.pg and skip:
            results.append(None)
            continue
        print(f"  creates: {setup.label} ...", flush=True)
        with workdir("scaleout-create") as work:
            api_port = free_port()
            url = pg.database("create") if setup.pg and pg else None
            with (
                helper("fake_api.py", port=api_port, log=work / "fake.log"),
                relays(
                    work,
                    1,
                    api_port=api_port,
                    store=url,
                    polling={"interval_s": 60, "max_interval_s": 60},
                ) as procs,
            ):
                via = procs[0].client()
                direct = Client(api_port, {"Authorization": "Bearer sk-upstream"})
                with profiles(procs, f"scaleout-create-{'pg' if setup.pg else 'sqlite'}"):
                    relay_s, direct_s = measure(via, direct, warmup, count)
                results.append((relay_s, direct_s))
                via.close()
                direct.close()
    grid = Grid(section, [s.label for s in SETUPS[:2]])

    def each(fn: Callable[[list[float], list[float]], str]) -> list[str]:
        return [fn(*r) if r is not None else "skipped" for r in results]

    def p(values: list[float], q: float) -> float:
        return percentile(values, q)

    grid.add(
        "straight to upstream p50 / p99",
        each(lambda r, d: f"{fmt_ms(p(d, 50))} / {fmt_ms(p(d, 99))}"),
    )
    grid.add(
        "through the relay p50 / p99",
        each(lambda r, d: f"{fmt_ms(p(r, 50))} / {fmt_ms(p(r, 99))}"),
    )
    grid.add("added by the relay p50", each(lambda r, d: fmt_ms(p(r, 50) - p(d, 50))))
    grid.add("added by the relay p99", each(lambda r, d: fmt_ms(p(r, 99) - p(d, 99))))
    grid.emit()
    section.notes.append(
        f"{count} creates each way, alternating, after {warmup} warm-up pairs, one client;"
        " PostgreSQL: the task's INSERT in a transaction, the submitted UPDATE and a NOTIFY"
    )
    return section


def run(quick: bool) -> list[Section]:
    skip = missing()
    with contextlib.ExitStack() as stack:
        pg = None if skip else stack.enter_context(postgres())
        sections = [
            poller_section(pg, quick, skip),
            reads_section(pg, quick, skip),
            creates_section(pg, quick, skip),
        ]
    where = f"PostgreSQL skipped: {skip}" if skip else (pg.version if pg else "")
    sections[0].notes.insert(
        0,
        f"{where}; one local server, fsync + synchronous_commit on, TLS off, shared_buffers"
        " 128MB; every setup a fresh database, fake upstream and relays",
    )
    return sections


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
