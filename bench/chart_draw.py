"""Time until a 7-day chart is drawn in a real browser, against the same dashboard with an empty chart.

A device that sent every 10 s for 7 days (60,480 points in the SQL backend, as bench/pages.py
stores them) and a dashboard with its 7-day line chart; beside it, the same dashboard and chart
for a device without data. The web process is gunicorn and the live socket daphne, as under
``make run``, on a fresh PostgreSQL database (or SQLite), a Redis of the run's own and static
files collected as deploy/scripts/run.sh collects them. Debian's Chromium, headless through
Playwright, logs in through the login page and then loads the dashboards in turn.

The time of a load runs from navigation start to the ``iotflow:chart-drawn`` performance mark
that static/js/charts.js sets once a chart is on its canvas (data fetched, downsampled series
drawn by uPlot).

- ``chart_draw_p50_ms`` / ``chart_draw_p95_ms``: the 7-day chart, over ``--loads`` loads.
- ``chart_draw_empty_p95_ms``: the dashboard whose chart has nothing to draw: page, scripts,
  socket and a data request, without the points.
- ``chart_draw_vs_empty``: p95 with 60,480 points ÷ p95 of the empty chart.

    .venv/bin/python bench/chart_draw.py [--loads 10]
"""

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import services  # noqa: E402
from bench.pages import seed  # noqa: E402
from bench.services import fresh_database, private_redis  # noqa: E402
from bench.web import serve  # noqa: E402

# These figures have been reported with the inclusive quantile method from the start.
p95 = functools.partial(services.p95, method="inclusive")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MARK = "iotflow:chart-drawn"
PASSWORD = "bench-pass-123"  # bench/pages.py's seed
WARMUP = 2


def server_env(db_url: str, redis_url: str, static_root: str) -> dict[str, str]:
    """What deploy/scripts/run.sh gives web and ws processes, with static files of the run's own."""
    return {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url.rsplit("/", 1)[0] + "/1",
        "STATIC_ROOT": static_root,
        "MQTT_MANAGE_ACCOUNTS": "0",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }


def setup_django(env: dict[str, str]) -> None:
    """Django in this process, with static files collected where the servers read them."""
    services.setup_django(env)
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


def seed_dashboards() -> tuple[int, int, int]:
    """The 7-day dashboard of bench/pages.py and one like it for a device without data; (full, empty, points)."""
    from dashboards.models import Chart, Dashboard
    from devices.models import Device

    user, _, dashboard, chart, count = seed()
    quiet = Device(owner=user, name="no data yet", device_type="sensor")
    quiet.set_new_api_key()
    quiet.save()
    empty = Dashboard.objects.create(owner=user, name="Empty")
    empty_chart = Chart.objects.create(
        dashboard=empty, title="7 days", chart_type=chart.chart_type, measurements=chart.measurements,
        time_range=chart.time_range, width=chart.width,
    )  # fmt: skip
    empty_chart.devices.add(quiet)
    return dashboard.pk, empty.pk, count


def log_in(page, username: str = "bench") -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def load(page, path: str) -> dict[str, float]:
    """Load ``path``; ms from navigation start to each phase, the last chart's drawn mark the end."""
    page.goto(path, wait_until="commit")
    page.wait_for_function(
        "() => { const n = document.querySelectorAll('[data-chart]').length;"
        f" return n > 0 && performance.getEntriesByName('{MARK}').length >= n; }}",
        timeout=30_000,
    )
    return page.evaluate(PHASES)


# Where a load's time goes: the page's HTML, its scripts run, the chart data's request, the drawing.
PHASES = f"""() => {{
  const nav = performance.getEntriesByType("navigation")[0];
  const data = performance.getEntriesByType("resource").filter((r) => r.name.includes("/data"));
  const drawn = Math.max(...performance.getEntriesByName("{MARK}").map((m) => m.startTime));
  return {{
    html: nav.responseEnd,
    ready: nav.domContentLoadedEventEnd,
    data_start: data.length ? Math.min(...data.map((r) => r.requestStart)) : 0,
    data_end: data.length ? Math.max(...data.map((r) => r.responseEnd)) : 0,
    drawn,
    points: Number(document.querySelector("[data-chart]").dataset.points || 0),
  }};
}}"""


def measure(base_url: str, full: int, empty: int, loads: int) -> dict[str, list[dict]]:
    paths = {"full": f"/dashboards/{full}/", "empty": f"/dashboards/{empty}/"}
    samples: dict[str, list[dict]] = {name: [] for name in paths}
    with browser_page(base_url) as page:
        for index in range(WARMUP + loads):
            for name, path in paths.items():  # alternating, so both see the same machine
                phases = load(page, path)
                if index >= WARMUP:
                    samples[name].append(phases)
    return samples


def require_chromium() -> None:
    """Fail before any seeding when the browser is missing."""
    if not Path(CHROMIUM).exists():
        raise SystemExit("browser benchmarks need Debian's Chromium: apt-get install chromium")


@contextmanager
def browser_page(base_url: str, username: str = "bench") -> Iterator:
    """A page of Debian's headless Chromium on ``base_url``, its user logged in through the login page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            log_in(page, username)
            yield page
        finally:
            context.close()
            browser.close()


def start_servers(servers: ExitStack, env: dict[str, str], name: str) -> str:
    """daphne, then gunicorn with the live socket's URL pointing at it, as ``make run``; the web base URL.

    ``env`` gains LIVE_WEBSOCKET_URL. Logs go to var/bench-<name>-ws.log and var/bench-<name>-web.log.
    """
    ws_url = servers.enter_context(serve("daphne", env, ROOT / "var" / f"bench-{name}-ws.log"))
    env["LIVE_WEBSOCKET_URL"] = f"ws://{{hostname}}:{urllib.parse.urlsplit(ws_url).port}/ws/notifications/"
    return servers.enter_context(serve("gunicorn", env, ROOT / "var" / f"bench-{name}-web.log"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=10, help="timed loads of each dashboard")
    args = parser.parse_args()
    require_chromium()
    db_url = fresh_database("iotflow_bench_chart")
    with private_redis() as redis_url, tempfile.TemporaryDirectory() as static_root, ExitStack() as servers:
        env = server_env(db_url, redis_url, static_root)
        setup_django(env)
        full, empty, count = seed_dashboards()
        base_url = start_servers(servers, env, "chart")
        started = time.monotonic()
        samples = measure(base_url, full, empty, args.loads)
        took = time.monotonic() - started
    full_ms, empty_ms = [p["drawn"] for p in samples["full"]], [p["drawn"] for p in samples["empty"]]
    drawn_points = samples["full"][-1]["points"]
    print(f"browser: {CHROMIUM} headless; {args.loads} loads of each dashboard (after {WARMUP}) in {took:.0f} s")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'7-day chart, ' + f'{count:,} points stored':<40}p50 {statistics.median(full_ms):7.0f} ms"
          f"   p95 {p95(full_ms):7.0f} ms   ({drawn_points:,} points drawn)")  # fmt: skip
    print(f"{'same dashboard, empty chart':<40}p50 {statistics.median(empty_ms):7.0f} ms   p95 {p95(empty_ms):7.0f} ms")
    for name in ("full", "empty"):
        median = {key: statistics.median(p[key] for p in samples[name]) for key in samples[name][0]}
        print(f"  {name}, medians (ms from navigation start): HTML {median['html']:.0f}, "
              f"DOM ready {median['ready']:.0f}, data request {median['data_start']:.0f}-{median['data_end']:.0f}, "
              f"drawn {median['drawn']:.0f}")  # fmt: skip
    print(f"chart_stored_points: {count}")
    print(f"chart_drawn_points: {drawn_points}")
    print(f"chart_draw_p50_ms: {statistics.median(full_ms):.0f}")
    print(f"chart_draw_p95_ms: {p95(full_ms):.0f}")
    print(f"chart_draw_empty_p50_ms: {statistics.median(empty_ms):.0f}")
    print(f"chart_draw_empty_p95_ms: {p95(empty_ms):.0f}")
    print(f"chart_draw_vs_empty: {p95(full_ms) / p95(empty_ms):.2f}")


if __name__ == "__main__":
    main()
