"""Benchmark 6: time from start to the first answered `/healthz`, and idle RSS.

`relay serve` is spawned (the venv's python, `-m relay serve --config ...`, one `openai` channel)
and /healthz is tried every 2 ms until it answers 200: the time is from spawning the process to
that answer, so it includes the interpreter's start and every import. Each run is a first start
(empty data dir: database created and migrated) followed by a restart on that data dir. Idle RSS
is VmRSS two seconds after the answer, with nothing to do.

    .venv/bin/python bench/startup.py [--quick]
"""

from __future__ import annotations

import time

from _common import Section, cli, fmt_ms, free_port, helper, median, relay, rss_mib, workdir

START_TARGET_S = 0.5
RSS_TARGET_MIB = 45.0
IDLE_S = 2.0


def run(quick: bool) -> Section:
    runs = 2 if quick else 5
    section = Section(6, "start and idle")
    first: list[float] = []
    again: list[float] = []
    idle: list[float] = []
    with workdir("startup") as work:
        api_port = free_port()
        with helper("fake_api.py", port=api_port, log=work / "fake_api.log"):
            for i in range(runs):
                data_dir = work / f"data{i}"
                with relay(work, api_port=api_port, data_dir=data_dir) as r:
                    first.append(r.started_s)
                with relay(work, api_port=api_port, data_dir=data_dir) as r:
                    again.append(r.started_s)
                    time.sleep(IDLE_S)
                    idle.append(rss_mib(r.pid))
    start = median(again)
    section.add(
        "start to /healthz, empty data dir",
        fmt_ms(median(first)),
        "<= 500 ms",
        median(first) <= START_TARGET_S,
    )
    section.add("start to /healthz, restart", fmt_ms(start), "<= 500 ms", start <= START_TARGET_S)
    section.add("idle RSS", f"{median(idle):.1f} MiB", "<= 45 MiB", median(idle) <= RSS_TARGET_MIB)
    section.notes.append(f"medians of {runs} runs each")
    return section


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
