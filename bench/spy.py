"""Profiles of the relay during a benchmark's measured phase, with py-spy.

`run.py --profile DIR` (or any benchmark script with --profile DIR) records the relay process
with `py-spy record` while each benchmark measures, and writes DIR/<benchmark>.txt (py-spy's
collapsed stacks, per thread) and DIR/<benchmark>.summary.txt: per thread, the hottest functions
by own time and by inclusive time, as a share of the recorded wall time and of the samples in
which that thread was busy. $BENCH_PYSPY_FLAGS adds flags (`--gil`: only the thread holding
the GIL, which leaves out waits for it; SQLite's own work runs without the GIL). Without py-spy
on PATH (or in $BENCH_PY_SPY) profiles are skipped.
py-spy is not a project dependency: `pip install py-spy` into any venv.

    python bench/spy.py DIR/status.txt     # summarize a recording again
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from _common import tool

RATE_HZ = 200
_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*):(?P<line>\d+)\)$")


def pyspy() -> str | None:
    return tool("py-spy")


@contextlib.contextmanager
def profiled(pid: int, name: str) -> Iterator[None]:
    """Record `pid` while the block runs, when a profile directory was asked for."""
    folder = os.environ.get("BENCH_PROFILE_DIR")
    exe = pyspy()
    if not folder or not exe:
        yield
        return
    out = Path(folder) / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with (out.parent / f"{name}.py-spy.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                *(exe, "record", "-p", str(pid), "-r", str(RATE_HZ), "--format", "raw"),
                *("-o", str(out), "--threads", "--nonblocking"),
                *os.environ.get("BENCH_PYSPY_FLAGS", "").split(),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    time.sleep(1.0)  # attaching takes a moment
    t0 = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - t0 + 1.0
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if out.exists():
            (out.parent / f"{name}.summary.txt").write_text(summarize(out, seconds))


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match.group('func')} ({path}:{match.group('line')})"


def _function(frame: str) -> str:
    """A frame without its line number: `func (file)`."""
    return re.sub(r":\d+\)$", ")", frame)


def summarize(path: Path, seconds: float | None = None, top: int = 25) -> str:
    per_thread: dict[str, Counter[str]] = defaultdict(Counter)
    own: dict[str, Counter[str]] = defaultdict(Counter)
    own_lines: dict[str, Counter[str]] = defaultdict(Counter)
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    for raw in path.read_text().splitlines():
        match = _LINE.match(raw)
        if not match:
            continue
        count = int(match.group("count"))
        head, _, rest = match.group("stack").partition(";")
        thread = head.split(":", 1)[1].strip() if ":" in head else head
        frames = [_short(f) for f in rest.split(";")[1:] if f] if rest else []
        per_thread[thread]["samples"] += count
        if not frames:
            continue
        own[thread][_function(frames[-1])] += count
        own_lines[thread][frames[-1]] += count
        for func in {_function(f) for f in frames}:
            inclusive[thread][func] += count
    expected = seconds * RATE_HZ if seconds else None
    out = [
        f"profile {path.name}: py-spy at {RATE_HZ} Hz"
        + (f" over {seconds:.1f} s" if seconds else "")
    ]
    for thread, counts in sorted(per_thread.items(), key=lambda kv: -kv[1]["samples"]):
        busy = counts["samples"]
        share = f", busy {busy / expected:.0%} of the wall time" if expected else ""
        out += ["", f"thread {thread}: {busy} busy samples{share}"]
        out.append("  own time (function, then its hottest line):")
        for func, n in own[thread].most_common(top):
            line = next(
                (f for f, _ in own_lines[thread].most_common() if _function(f) == func), func
            )
            out.append(f"    {n / busy:6.1%}  {line}")
        out.append("  inclusive time:")
        for func, n in inclusive[thread].most_common(top):
            out.append(f"    {n / busy:6.1%}  {func}")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="summarize a py-spy raw recording")
    parser.add_argument("path", type=Path)
    parser.add_argument("--seconds", type=float, help="the recording's length, for wall shares")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarize(args.path, args.seconds, args.top), end="")


if __name__ == "__main__":
    main()
