"""``make bench``: run every benchmark, each against a baseline measured in the same run, and print figures.

Each benchmark prints ``name: value`` lines; this runner repeats them (``--runs``, default 1)
and ends with one line per figure, the median over the runs.
"""

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Each entry stays within a few minutes so that one run of the whole list takes under 10 minutes
# (docs/performance.md gives the longer runs, e.g. ``bench/mqtt_sustained.py --seconds 600``).
BENCHMARKS = [
    ["bench/http_ingest.py", "--seconds", "4"],
    ["bench/aggregate.py"],
    ["bench/mqtt_ingest.py", "--messages", "60000"],
    ["bench/mqtt_sustained.py", "--seconds", "90"],
    [
        "bench/serving.py",
        "--layouts",
        # sync workers (the first layout), gunicorn's gthread, the product's balanced gthread, the ws process
        "gunicorn-sync-2,gunicorn-gthread-2x4,gunicorn-balanced-2x4,daphne",
        "--seconds",
        "2",
    ],
    ["bench/pages.py"],
    ["bench/ws.py", "--steps", "500,1000,1500,2000"],
    ["bench/chart_draw.py"],
    ["bench/browser_live.py", "--samples", "100", "--rate", "5"],
]


FAILED: list[str] = []


def run(script: list[str]) -> dict[str, float]:
    """Run one benchmark; its figures are kept even when it fails a check (it says which, and make bench fails)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, *script], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    print(result.stdout, end="")
    if result.returncode != 0:
        print(result.stderr[-4000:], file=sys.stderr)
        FAILED.append(script[0])
    print(f"({script[0]} took {time.monotonic() - started:.0f} s)\n")
    figures = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name.replace("_", "").isalnum() and name.islower():
            with contextlib.suppress(ValueError):
                figures[name] = float(value)
    return figures


def machine_probe_ms() -> float:
    """Best of five timings of a fixed pure-Python loop: how fast this machine is during the run.

    Not a figure with a target: the shared machine's speed moves between runs (other tenants),
    and this line lets runs be compared with one another.
    """
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        sum(range(10_000_000))
        timings.append((time.perf_counter() - started) * 1000)
    return round(min(timings), 1)


def machine_probe_roundtrip_us() -> float:
    """Median of 2,000 one-byte round trips to a forked echo process over a socket pair, in µs.

    The Python loop above misses what servers spend most on here: system calls and switches
    between processes, which a busy host slows far more than arithmetic.
    """
    ours, theirs = socket.socketpair()
    child = os.fork()
    if child == 0:
        ours.close()
        while byte := theirs.recv(1):
            theirs.sendall(byte)
        os._exit(0)
    theirs.close()
    samples = []
    for _ in range(2_000):
        started = time.perf_counter()
        ours.sendall(b"x")
        ours.recv(1)
        samples.append((time.perf_counter() - started) * 1e6)
    ours.close()
    os.waitpid(child, 0)
    return round(statistics.median(samples), 1)


def main() -> None:
    os.environ.setdefault("BENCH_PAGE_REQUESTS", "50")  # bench/pages.py: 50 requests a page keep the run short
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    collected: dict[str, list[float]] = {}
    started = time.monotonic()
    for _ in range(args.runs):
        probes = (("machine_probe_ms", machine_probe_ms), ("machine_roundtrip_us", machine_probe_roundtrip_us))
        for name, probe in probes:
            value = probe()
            print(f"{name}: {value}")
            collected.setdefault(name, []).append(value)
        print()
        for script in BENCHMARKS:
            for name, value in run(script).items():
                collected.setdefault(name, []).append(value)
    print(f"each run's values (make bench took {time.monotonic() - started:.0f} s):")
    for name, values in collected.items():
        print(f"  {name:<36} {', '.join(f'{value:g}' for value in values)}")
    print(f"medians of {args.runs} run(s):")
    for name, values in collected.items():
        print(f"{name}: {statistics.median(values):g}")
    if FAILED:
        raise SystemExit(f"failed: {', '.join(FAILED)}")


if __name__ == "__main__":
    main()
