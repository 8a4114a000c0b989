"""Benchmark 5: the poller with 10,000 running tasks against an upstream answering in 200 ms.

Before the relay starts, 10,000 `in_progress` tasks of its `openai` channel are written straight
into its SQLite database (the schema made by relay.store's own migrations), each with an upstream
id and a `next_poll_at` spread evenly over a window of 60 s that opens a few seconds after the
start, and a `poll_interval` of 60 s, as in the steady state of long-running jobs (the next poll of
each falls after the window). That is 167 polls/s, each answered `in_progress` after 200 ms by
the fake upstream, which records when every poll arrived.

Lag = (arrival of a task's first poll at the upstream) - (its next_poll_at). The relay's CPU is
read from /proc/<pid>/stat (user + system, all threads) over the window. Settings, as a user with
10,000 tasks on one 200 ms upstream would choose: interval_s 5, max_interval_s 60 (the defaults),
concurrency 64 (167/s x 0.2 s = 33 in flight on average, with room for bursts).

    .venv/bin/python bench/polling.py [--quick]     (--quick: 2,000 tasks over 12 s, same rate)
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from _common import (
    Client,
    Section,
    cli,
    cpu_seconds,
    fmt_ms,
    free_port,
    helper,
    main_thread_cpu,
    percentile,
    relay,
    rss_mib,
    workdir,
)
from spy import profiled

LAG_TARGET_S = 1.0
CPU_TARGET = 0.30
POLLING = {"interval_s": 5, "max_interval_s": 60, "concurrency": 64}
DELAY_S = 0.2
LEAD_S = 4.0  # from writing the rows to the window's start: covers the relay's start
GRACE_S = 10.0


def make_database(data_dir: Path) -> None:
    """An empty relay database with every migration applied, by the relay's own code."""
    from relay.store import open_store, sqlite_url

    async def migrate() -> None:
        store = await open_store(sqlite_url(data_dir / "relay.db"))
        await store.close()

    data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(migrate())


def insert_tasks(db: Path, count: int, opens: float, window: float) -> dict[str, float]:
    """`count` running tasks due evenly over [opens, opens + window]; upstream id -> due time."""
    now = time.time()
    due = {f"video_up{i:06d}": opens + window * (i + 0.5) / count for i in range(count)}
    rows = [
        {
            "id": f"video_bench{i:06d}",
            "upstream_id": upstream_id,
            "next_poll_at": at,
            "created_at": int(now) - 120,
            "submitted_at": now - 120,
            "updated_at": now - 60,
        }
        for i, (upstream_id, at) in enumerate(due.items())
    ]
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO tasks (id, owner, channel, provider, model, upstream_model, upstream_id,"
            " request, prompt, seconds, size, status, progress, created_at, submitted_at,"
            " updated_at, next_poll_at, poll_interval)"
            " VALUES (:id, 'bench', 'fake-openai', 'openai', 'sora-2', 'sora-2', :upstream_id,"
            " '{}', 'bench', '4', '720x1280', 'in_progress', 10, :created_at, :submitted_at,"
            " :updated_at, :next_poll_at, 60)",
            rows,
        )
    return due


def run(quick: bool) -> Section:
    count, window = (2_000, 12.0) if quick else (10_000, 60.0)
    section = Section(5, f"poller, {count:,} tasks, 200 ms upstream")
    with workdir("polling") as work:
        api_port = free_port()
        data_dir = work / "data"
        make_database(data_dir)
        with helper(
            "fake_api.py",
            "--poll-delay",
            str(DELAY_S),
            "--record",
            port=api_port,
            log=work / "fake.log",
        ):
            opens = time.time() + LEAD_S
            due = insert_tasks(data_dir / "relay.db", count, opens, window)
            with relay(work, api_port=api_port, polling=POLLING, data_dir=data_dir) as r:
                time.sleep(max(0.0, opens - time.time()))
                with profiled(r.pid, "polling"):
                    cpu0, loop0 = cpu_seconds(r.pid), main_thread_cpu(r.pid)
                    t0 = time.perf_counter()
                    time.sleep(window)
                    elapsed = time.perf_counter() - t0
                    cpu = (cpu_seconds(r.pid) - cpu0) / elapsed
                    loop = (main_thread_cpu(r.pid) - loop0) / elapsed
                rss = rss_mib(r.pid)
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
    lags = [first[k] - due[k] for k in due if k in first]
    polled = len(lags)
    p50, p99 = percentile(lags, 50), percentile(lags, 99)
    section.add("polled (each task once)", f"{polled:,}/{count:,}", f"{count:,}", polled == count)
    section.add("lag p50", fmt_ms(p50))
    section.add("lag p99", fmt_ms(p99), "<= 1 s", polled == count and p99 <= LAG_TARGET_S)
    section.add("lag max", fmt_ms(max(lags)) if lags else "-")
    section.add("relay CPU, share of a core", f"{cpu:.0%}", "<= 30%", cpu <= CPU_TARGET)
    section.add("  event loop / other threads", f"{loop:.0%} / {cpu - loop:.0%}")
    section.add("relay RSS at the end", f"{rss:.1f} MiB")
    section.notes.append(
        f"rows written into SQLite before the start; settings: interval_s 5, max_interval_s 60,"
        f" concurrency 64; {count / window:.0f} polls/s over {window:.0f} s"
    )
    return section


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
