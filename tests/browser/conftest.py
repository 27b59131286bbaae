"""A real browser: Debian's Chromium driven by Playwright against the live test server, and the ws process."""

import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def page(live_server, transactional_db, monkeypatch) -> Iterator:
    """A fresh browser page whose relative URLs go to the live server."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium not installed: apt-get install chromium")
    if not (ROOT / "static" / "vendor" / "uPlot.iife.min.js").exists():
        pytest.fail("static/vendor/ is not built: run `make vendor` (npm ci && npm run build)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright not installed: pip install playwright")
    # Playwright's sync API keeps an event loop running in this thread, and Django refuses ORM calls
    # from a thread with a running loop; the calls here are plain synchronous test code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
        try:
            yield context.new_page()
        finally:
            # With the loop running, Django keeps this thread's connections in the loop's context rather than
            # the thread's: closed here, or the test database is left with a session when the suite drops it.
            connections.close_all()
            context.close()
            browser.close()


ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"


@dataclass
class _NoBroker:
    """child_env() wants a broker; the ws process talks to none."""

    host: str = "127.0.0.1"
    port: int = 1
    platform_username: str = "unused"
    platform_password: str = "unused"
    admin_username: str = "unused"
    admin_password: str = "unused"


@pytest.fixture
def live_socket(private_redis, live_server, settings, tmp_path) -> Iterator[int]:
    """The ws process: daphne serving the ASGI app on its own port, against the test database.

    Pages come from pytest-django's live server (WSGI, as gunicorn serves them) and open their
    socket on daphne, as under ``make run``: LIVE_WEBSOCKET_URL points them there. Both processes
    share the test's own Redis as channel layer, so telemetry stored by the test process reaches
    the browser through Redis and daphne, the production path.
    """
    from notifications import live
    from tests.integration.processes import child_env, stop_process

    prefix = f"iotflow-browser-{secrets.token_hex(4)}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [private_redis.url], "prefix": prefix},
        }
    }
    settings.MQTT_MANAGE_ACCOUNTS = False
    port = _free_port()
    env = child_env(
        _NoBroker(), CHANNEL_LAYER_URL=private_redis.url, CHANNEL_LAYER_PREFIX=prefix, MQTT_MANAGE_ACCOUNTS="0"
    )
    log = tmp_path / "daphne.log"
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "iotflow.asgi:application"]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, log)
        settings.LIVE_WEBSOCKET_URL = f"ws://{{hostname}}:{port}/ws/notifications/"
        yield port
    finally:
        live.wait_until_sent(5)
        stop_process(process)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"daphne exited with {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"daphne did not listen on {port}:\n{log.read_text()}")


def log_in(page, username: str, password: str = "s3cret-pass-123") -> None:
    """Log in through the login form, as a person would."""
    from playwright.sync_api import expect

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()


def wait_until_following(page, device_id: int) -> None:
    """The page's socket is open and subscribed to the device: what is sent from now on arrives."""
    from playwright.sync_api import expect

    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator("body")).to_have_attribute("data-live-subscribed", re.compile(rf"(^|,){device_id}(,|$)"))


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, animations="disabled")


def go_to(page, section: str) -> None:
    """Follow a link of the main navigation (Overview, Devices, Dashboards, Alerts)."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=section, exact=True).click()


def charts_drawn(page, count: int):
    """The page holds ``count`` charts and each has loaded its data and drawn; returns their locator."""
    from playwright.sync_api import expect

    charts = page.locator("[data-chart]")
    expect(charts).to_have_count(count)
    for index in range(count):
        expect(charts.nth(index)).to_have_attribute("data-state", "ready")
    return charts
