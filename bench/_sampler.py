"""A small CPU-weighted sampling profiler for a Python server process, for the benchmarks only.

    python bench/_sampler.py --out PREFIX [--interval 0.002] -- SCRIPT [ARGS...]

runs SCRIPT (e.g. `.venv/bin/strata serve command-api`) in this interpreter and samples every
thread's Python stack every `--interval` seconds. Each sample is weighted by the CPU time
the thread used since the previous sample (from /proc/self/task/<tid>/schedstat, in ns), so
threads blocked in C (waiting on PostgreSQL, on the GIL, or idle) weigh nothing: the figures
are where the process burns CPU, on every thread, not only the main one (cProfile and
pyinstrument see only the thread they are started on; the command API's handlers run in
worker threads).

SIGUSR1 resets the counters (start of a measured phase); SIGUSR2 writes the report
(PREFIX-<n>.txt and PREFIX-<n>.json, n = 1, 2, ...); so does the end of the process
(unless nothing was sampled since the last report).

`--mode cprofile` instead runs cProfile around every event-loop callback and thread-pool work
item between SIGUSR1 and SIGUSR2: exact call counts, but inflated times for call-heavy code;
`--mode cprofile-cpu` the same with each thread's CPU time as the clock (waits count zero).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import concurrent.futures.thread
import cProfile
import io
import json
import os
import pstats
import runpy
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

Key = tuple[str, int, str]  # (file, first line, function)


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/lib/python3."):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail if marker == "/site-packages/" else "stdlib/" + tail.split("/", 1)[-1]
    root = str(Path.cwd()) + "/"
    return filename.removeprefix(root)


def _label(key: Key) -> str:
    return f"{key[2]}  ({_short(key[0])}:{key[1]})"


def _stack(frame: FrameType | None) -> list[Key]:
    out: list[Key] = []
    while frame is not None:
        code = frame.f_code
        out.append((code.co_filename, code.co_firstlineno, code.co_name))
        frame = frame.f_back
    return out  # leaf first


def _cpu_ns(native_id: int) -> int:
    try:
        with open(f"/proc/self/task/{native_id}/schedstat", "rb") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


class Sampler:
    def __init__(self, out: str, interval: float) -> None:
        self.out = out
        self.interval = interval
        self.lock = threading.RLock()
        self.stopped = threading.Event()
        self.reports = 0
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.self_ns: Counter[Key] = Counter()
            self.total_ns: Counter[Key] = Counter()
            self.thread_ns: Counter[str] = Counter()
            self.samples = 0
            self.started = time.perf_counter()
            self.last: dict[int, int] = {}
            self.written = False

    def run(self) -> None:
        me = threading.get_ident()
        while not self.stopped.wait(self.interval):
            threads = {t.ident: t for t in threading.enumerate() if t.ident is not None}
            frames = sys._current_frames()
            with self.lock:
                self.samples += 1
                for ident, frame in frames.items():
                    thread = threads.get(ident)
                    if ident == me or thread is None or thread.native_id is None:
                        continue
                    now = _cpu_ns(thread.native_id)
                    before = self.last.get(thread.native_id)
                    self.last[thread.native_id] = now
                    if before is None or now <= before:
                        continue
                    spent = now - before
                    group = "main (event loop)" if thread is threading.main_thread() else "workers"
                    self.thread_ns[group] += spent
                    stack = _stack(frame)
                    if not stack:
                        continue
                    self.self_ns[stack[0]] += spent
                    for key in set(stack):
                        self.total_ns[key] += spent

    def report(self) -> None:
        with self.lock:
            if self.written:
                return
            self.written = True
            self.reports += 1
            out = f"{self.out}-{self.reports}"
            wall = time.perf_counter() - self.started
            cpu = sum(self.thread_ns.values())
            lines = [
                f"wall {wall:.2f}s, sampled CPU {cpu / 1e9:.2f}s "
                f"({cpu / 1e9 / max(wall, 1e-9):.2f} cores), {self.samples} samples",
                "CPU by thread group: "
                + ", ".join(
                    f"{name} {ns / 1e9:.2f}s ({100 * ns / max(cpu, 1):.1f}%)"
                    for name, ns in self.thread_ns.most_common()
                ),
                "",
                "Top self CPU (the function itself, not its Python callees):",
            ]
            lines += [
                f"  {100 * ns / max(cpu, 1):5.1f}%  {ns / 1e9:6.2f}s  {_label(key)}"
                for key, ns in self.self_ns.most_common(45)
            ]
            lines += ["", "Top inclusive CPU (the function and everything under it):"]
            lines += [
                f"  {100 * ns / max(cpu, 1):5.1f}%  {ns / 1e9:6.2f}s  {_label(key)}"
                for key, ns in self.total_ns.most_common(90)
            ]
            Path(out + ".txt").write_text("\n".join(lines) + "\n")
            payload = {
                "wall_s": wall,
                "cpu_s": cpu / 1e9,
                "threads": {k: v / 1e9 for k, v in self.thread_ns.items()},
                "self": [[_label(k), v / 1e9] for k, v in self.self_ns.most_common(200)],
                "inclusive": [[_label(k), v / 1e9] for k, v in self.total_ns.most_common(400)],
            }
            Path(out + ".json").write_text(json.dumps(payload, indent=1))


class Deterministic:
    """`--mode cprofile`: cProfile around each event-loop callback and each thread-pool work
    item, only between SIGUSR1 and SIGUSR2 (each profiler is enabled and disabled on its own
    thread). Exact call counts; the overhead inflates call-heavy Python code."""

    def __init__(self, out: str, *, cpu: bool) -> None:
        self.out = out
        self.cpu = cpu
        self.active = False
        self.reports = 0
        self.lock = threading.Lock()
        self.profiles: dict[str, list[cProfile.Profile]] = {"loop": [], "workers": []}
        self.local = threading.local()
        self.in_flight = 0
        self.started = time.perf_counter()

    def _profile(self, group: str) -> cProfile.Profile:
        key = f"profile_{self.reports}"
        profile: cProfile.Profile | None = getattr(self.local, key, None)
        if profile is None:
            # cpu: the thread's own CPU time, so waits (PostgreSQL, the GIL) count for nothing
            profile = cProfile.Profile(time.thread_time) if self.cpu else cProfile.Profile()
            setattr(self.local, key, profile)
            with self.lock:
                self.profiles[group].append(profile)
        return profile

    def wrap(self, cls: Any, group: str) -> None:
        original = cls._run if group == "loop" else cls.run
        outer = self

        def run(self: Any) -> Any:
            if not outer.active:
                return original(self)
            profile = outer._profile(group)
            with outer.lock:
                outer.in_flight += 1
            profile.enable()
            try:
                return original(self)
            finally:
                profile.disable()
                with outer.lock:
                    outer.in_flight -= 1

        setattr(cls, "_run" if group == "loop" else "run", run)

    def reset(self) -> None:
        self.started = time.perf_counter()
        self.active = True

    def report(self) -> None:
        if not self.active:
            return
        self.active = False
        wall = time.perf_counter() - self.started
        deadline = time.monotonic() + 2
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        self.reports += 1
        out = f"{self.out}-{self.reports}"
        buffer = io.StringIO()
        timer = "thread CPU time" if self.cpu else "wall time"
        buffer.write(f"cProfile ({timer}), phase wall {wall:.2f}s\n")
        for group, profiles in self.profiles.items():
            done = [p for p in profiles if p.getstats()]
            if not done:
                continue
            stats = pstats.Stats(done[0], stream=buffer)
            for other in done[1:]:
                stats.add(other)
            buffer.write(f"\n===== {group}: {len(done)} thread(s) =====\n")
            stats.sort_stats("tottime").print_stats(40)
            stats.sort_stats("cumulative").print_stats(60)
        Path(out + ".txt").write_text(buffer.getvalue())
        self.profiles = {"loop": [], "workers": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="report path prefix (.txt and .json)")
    parser.add_argument("--interval", type=float, default=0.002)
    parser.add_argument("--mode", choices=("sample", "cprofile", "cprofile-cpu"), default="sample")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args()
    profiler: Sampler | Deterministic
    if ns.mode.startswith("cprofile"):
        profiler = Deterministic(ns.out, cpu=ns.mode == "cprofile-cpu")
        profiler.wrap(asyncio.events.Handle, "loop")
        profiler.wrap(concurrent.futures.thread._WorkItem, "workers")
    else:
        profiler = Sampler(ns.out, ns.interval)
        threading.Thread(target=profiler.run, name="bench-sampler", daemon=True).start()
    signal.signal(signal.SIGUSR1, lambda *_: profiler.reset())
    signal.signal(signal.SIGUSR2, lambda *_: profiler.report())
    atexit.register(profiler.report)
    sys.argv = [ns.script, *[a for a in ns.args if a != "--"]]
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    runpy.run_path(ns.script, run_name="__main__")


if __name__ == "__main__":
    main()
