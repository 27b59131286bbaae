"""``make bench``: run every benchmark, each against a baseline measured in the same run, and print figures.

Each benchmark prints ``name: value`` lines; this runner repeats them (``--runs``, default 1)
and ends with one line per figure, the median over the runs.
"""

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = [
    ["bench/mqtt_ingest.py", "--messages", "60000"],
    ["bench/pages.py"],
]


def run(script: list[str]) -> dict[str, float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, *script], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    print(result.stdout, end="")
    if result.returncode != 0:
        print(result.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"{script[0]} failed")
    print(f"({script[0]} took {time.monotonic() - started:.0f} s)\n")
    figures = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name.replace("_", "").isalnum() and name.islower():
            with contextlib.suppress(ValueError):
                figures[name] = float(value)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    collected: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for script in BENCHMARKS:
            for name, value in run(script).items():
                collected.setdefault(name, []).append(value)
    print(f"medians of {args.runs} run(s):")
    for name, values in collected.items():
        print(f"{name}: {statistics.median(values):g}")


if __name__ == "__main__":
    main()
