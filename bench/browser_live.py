"""Time from a telemetry POST until an open browser page shows the value on the device's live values tab.

The servers are those of ``make run`` as bench/chart_draw.py starts them (gunicorn web process,
daphne ws process, a Redis of the run's own for the channel layer, collected static files) on a
fresh PostgreSQL database, with the owner and device bench/ws.py seeds. Debian's Chromium,
headless through Playwright, logs in through the login page, opens ``/devices/<id>/live`` and
waits until its live socket is subscribed to the device.

On the page a MutationObserver watches the live values grid (``#live-values``, which
static/js/device.js updates for each telemetry message) and notes ``Date.now()`` the first time
the ``seq`` tile shows each number, and again in the next animation frame. Here, ``time.time()``
is taken just before each ``POST /api/v1/telemetry`` with the device's key, and the readings go
out at ``--rate`` a second. Browser and benchmark run on one machine with one wall clock;
``Date.now()`` has millisecond resolution, so each latency reads up to 1 ms short.

- ``browser_live_p50_ms`` / ``browser_live_p95_ms``: POST sent → value in the page's DOM, over
  ``--samples`` readings. A reading the page never shows counts as slower than any other.
- ``browser_live_frame_p95_ms``: POST sent → the first animation frame after the value changed.
- ``browser_live_post_p50_ms`` / ``browser_live_post_p95_ms``: the POST's own round trip, the
  part of the latency spent before the message leaves the web process.

    .venv/bin/python bench/browser_live.py [--samples 100] [--rate 5]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.chart_draw import CHROMIUM, browser_page, p95, require_chromium, start_servers  # noqa: E402
from bench.services import fresh_database, postgres_available, private_redis  # noqa: E402
from bench.ws import Ingest, seed, server_env  # noqa: E402

MEASUREMENT = "seq"  # bench/ws.py's Ingest sends {"seq": n}
WARMUP = 20
SETTLE_MS = 5_000

# Notes when the page first shows each number in the measurement's tile: the DOM time, then the next frame's.
OBSERVE = """(measurement) => {
  const grid = document.getElementById("live-values");
  const seen = (window.benchLiveSeen = {});
  const note = () => {
    const value = grid.querySelector(`.live-value[data-measurement="${measurement}"] .live-value__value`);
    const number = value ? Number(value.textContent) : NaN;
    if (!Number.isInteger(number) || number in seen) return;
    const entry = (seen[number] = { dom: Date.now(), frame: null });
    requestAnimationFrame(() => (entry.frame = Date.now()));
  };
  new MutationObserver(note).observe(grid, { childList: true, subtree: true, characterData: true });
}"""


def open_live_tab(page, device: int) -> None:
    """The device's live values tab, its socket subscribed to the device, the observer in place."""
    page.goto(f"/devices/{device}/live")
    page.wait_for_function(
        f"() => (document.body.dataset.liveSubscribed || '').split(',').includes('{device}')", timeout=30_000
    )
    page.evaluate(OBSERVE, MEASUREMENT)


def send(ingest: Ingest, first: int, count: int, rate: float) -> tuple[dict[int, float], list[float]]:
    """``count`` readings at ``rate`` a second; (wall-clock second each POST started, each POST's round trip ms)."""
    sent: dict[int, float] = {}
    round_trips = []
    start = time.perf_counter()
    for i in range(count):
        time.sleep(max(0.0, start + i / rate - time.perf_counter()))
        sent[first + i] = time.time()
        round_trips.append(ingest.post(first + i))
    return sent, round_trips


def shown(page, expected: int) -> dict[int, dict]:
    """What the page noted once it has shown ``expected`` non-negative readings, or after SETTLE_MS."""
    try:
        page.wait_for_function(
            "(n) => Object.keys(window.benchLiveSeen).filter((k) => Number(k) >= 0).length >= n",
            arg=expected,
            timeout=SETTLE_MS,
        )
    except Exception as exc:  # Playwright's TimeoutError: the missing readings count as lost
        print(f"not every reading was shown: {exc.__class__.__name__}", file=sys.stderr)
    return {int(number): entry for number, entry in page.evaluate("() => window.benchLiveSeen").items()}


def measure(base_url: str, key: str, device: int, samples: int, rate: float) -> dict[str, list[float]]:
    ingest = Ingest(base_url, key)
    with browser_page(base_url, "bench-ws") as page:
        open_live_tab(page, device)
        send(ingest, -WARMUP, WARMUP, rate)  # each web worker's first requests import, connect, start its sender
        sent, round_trips = send(ingest, 0, samples, rate)
        seen = shown(page, samples)
    lost = float("inf")
    return {
        "dom": [seen[seq]["dom"] - at * 1000 if seq in seen else lost for seq, at in sent.items()],
        "frame": [(seen[seq]["frame"] or lost) - at * 1000 if seq in seen else lost for seq, at in sent.items()],
        "post": round_trips,
    }


def spread(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples):6.1f} ms   p95 {p95(samples):6.1f} ms   max {max(samples):6.1f} ms"


def report(args, figures: dict[str, list[float]], took: float) -> None:
    lost = sum(latency == float("inf") for latency in figures["dom"])
    print(f"browser: {CHROMIUM} headless, /devices/<id>/live; {args.samples} readings at {args.rate:g}/s "
          f"(after {WARMUP}) in {took:.0f} s; {lost} not shown")  # fmt: skip
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'POST sent → value in the page (DOM)':<44}{spread(figures['dom'])}")
    print(f"{'POST sent → next frame after it':<44}{spread(figures['frame'])}")
    print(f"{'  of which the POST round trip':<44}{spread(figures['post'])}")
    print(f"browser_live_p50_ms: {statistics.median(figures['dom']):.1f}")
    print(f"browser_live_p95_ms: {p95(figures['dom']):.1f}")
    print(f"browser_live_frame_p95_ms: {p95(figures['frame']):.1f}")
    print(f"browser_live_post_p50_ms: {statistics.median(figures['post']):.1f}")
    print(f"browser_live_post_p95_ms: {p95(figures['post']):.1f}")
    print(f"browser_live_lost: {lost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100, help="readings timed")
    parser.add_argument("--rate", type=float, default=5, help="readings a second")
    args = parser.parse_args()
    require_chromium()
    if not postgres_available():
        raise SystemExit("bench/browser_live.py needs PostgreSQL on 127.0.0.1:5432")
    db_url = fresh_database("iotflow_bench_browser_live")
    with private_redis() as redis_url, tempfile.TemporaryDirectory() as static_root, ExitStack() as servers:
        env = {**server_env(db_url, redis_url, "pubsub"), "STATIC_ROOT": static_root}
        device, key = seed(env)
        base_url = start_servers(servers, env, "live")
        started = time.monotonic()
        figures = measure(base_url, key, device, args.samples, args.rate)
        took = time.monotonic() - started
    report(args, figures, took)


if __name__ == "__main__":
    main()
