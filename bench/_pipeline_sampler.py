"""Runs a Strata process under bench/_sampler.py's CPU-weighted stack sampler, for
bench/pipeline.py --profile.

    python bench/_pipeline_sampler.py --out PREFIX [--interval 0.002] -- SCRIPT [ARGS...]

Same sampler as bench/_sampler.py, driven by real-time signals instead of SIGUSR1/SIGUSR2,
which the Faust worker (mode.Worker) takes for itself: SIGRTMIN+1 resets the counters (start
of a measured phase), SIGRTMIN+2 writes PREFIX-<n>.txt/.json; so does a normal exit.
"""

from __future__ import annotations

import argparse
import atexit
import os
import runpy
import signal
import sys
import threading
from pathlib import Path

RESET = signal.SIGRTMIN + 1
REPORT = signal.SIGRTMIN + 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="report path prefix (.txt and .json)")
    parser.add_argument("--interval", type=float, default=0.002)
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _sampler import Sampler  # noqa: PLC0415 - bench/ is not a package

    profiler = Sampler(ns.out, ns.interval)
    threading.Thread(target=profiler.run, name="bench-sampler", daemon=True).start()
    signal.signal(RESET, lambda *_: profiler.reset())
    signal.signal(REPORT, lambda *_: profiler.report())
    atexit.register(profiler.report)
    sys.path.pop(0)
    sys.argv = [ns.script, *[a for a in ns.args if a != "--"]]
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    runpy.run_path(ns.script, run_name="__main__")


if __name__ == "__main__":
    main()
