"""WebSocket isolation matrix on ``/ws/notifications/`` through the real ASGI application and a Redis layer.

Who may open a socket (a logged-in user, from a page of an allowed host), which device groups a
user may join with every shape of ``subscribe`` message, and that nothing of another user's
reaches the socket: notifications, telemetry, command and health events.
"""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from devices import commands
from notifications import live, notify
from notifications.consumers import CLOSE_UNAUTHENTICATED
from tests.conftest import session_client

from ._matrix import Tally, record_figure

pytestmark = pytest.mark.django_db(transaction=True)

SOCKET_PATH = "/ws/notifications/"
FOREIGN_ORIGINS = [
    "http://evil.example",
    "https://testserver.evil.example",
    "http://testserverevil.example",
    "null",
    "file://",
    None,
]


@pytest.fixture
def redis_layer(private_redis, settings):
    """Redis pub/sub as the channel layer, as in production (the in-memory layer reaches one process only)."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [private_redis.url], "prefix": "iotflow-security"},
        }
    }
    yield private_redis
    live.wait_until_sent(5)


def cookie_of(user) -> bytes:
    session = session_client(user).cookies[settings.SESSION_COOKIE_NAME].value
    return f"{settings.SESSION_COOKIE_NAME}={session}".encode()


def socket(cookie: bytes | None, origin: str | None = "http://testserver") -> WebsocketCommunicator:
    from iotflow.asgi import application

    headers = [(b"origin", origin.encode())] if origin else []
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, SOCKET_PATH, headers=headers)


async def refused(communicator: WebsocketCommunicator) -> bool:
    """Refused at the handshake, or accepted only to be closed for want of a login."""
    connected, _ = await communicator.connect()
    if not connected:
        return True
    if await communicator.receive_nothing(1):
        await communicator.disconnect()
        return False
    message = await communicator.receive_output(1)
    await communicator.disconnect()
    return message["type"] == "websocket.close" and message.get("code") == CLOSE_UNAUTHENTICATED


def test_only_logged_in_pages_of_allowed_hosts_open_a_socket(request, redis_layer, alice):
    alice_cookie = cookie_of(alice)
    tally = Tally()

    async def scenario():
        tally.record("anonymous", 403 if await refused(socket(None)) else 101)
        tally.record("forged session", 403 if await refused(socket(b"sessionid=not-a-session")) else 101)
        for origin in FOREIGN_ORIGINS:
            tally.record(f"origin {origin!r}", 403 if await refused(socket(alice_cookie, origin)) else 101)
        accepted = socket(alice_cookie)
        assert (await accepted.connect())[0], "the control: alice from the site's own page"
        await accepted.disconnect()

    async_to_sync(scenario)()

    record_figure(request, "WebSocket: anonymous / foreign-origin handshakes refused", tally.figure)
    assert not tally.holes, tally.holes


def subscribe_attempts(own: int, foreign: int) -> list[dict]:
    """Every shape of request for another user's device the protocol might be talked into."""
    return [
        {"type": "subscribe", "devices": [foreign]},
        {"type": "subscribe", "device": foreign},
        {"type": "subscribe", "devices": [own, foreign]},
        {"type": "subscribe", "devices": [foreign, foreign]},
        {"type": "subscribe", "devices": [str(foreign)]},
        {"type": "subscribe", "devices": [float(foreign)]},
        {"type": "subscribe", "devices": [f"device.{foreign}"]},
        {"type": "subscribe", "devices": [{"id": foreign}]},
        {"type": "subscribe", "devices": [-foreign]},
        {"type": "subscribe", "devices": foreign},
        {"type": "subscribe", "group": f"device.{foreign}"},
        {"type": "subscribe", "group": f"user.{foreign}"},
        {"type": "join", "group": f"device.{foreign}"},
        {"type": "live.message", "message": {"type": "notification"}},
        {"type": "unsubscribe", "devices": [own]},
        {"type": "subscribe", "devices": [own]},
    ]


def test_user_joins_no_other_users_device_and_hears_nothing_of_theirs(
    request, redis_layer, alice, bob, make_device
):  # fmt: skip
    own, theirs = make_device(alice, "alice-purifier"), make_device(bob, "bob-purifier")
    alice_cookie = cookie_of(alice)
    tally = Tally()

    async def scenario():
        page = socket(alice_cookie)
        assert (await page.connect())[0]
        for attempt in subscribe_attempts(own.pk, theirs.pk):
            await page.send_json_to(attempt)
            answer = await page.receive_json_from(5)
            while answer["type"] == "error" and answer.get("code") == "device_not_found":
                answer = await page.receive_json_from(5)  # the per-id refusals come before the summary
            joined = answer.get("type") == "subscribed" and theirs.pk in answer["devices"]
            tally.record(str(attempt), 200 if joined else 403)

        # Everything that is bob's: a notification, telemetry, a command, a health change.
        await sync_to_async(notify)(bob, "warning", "Bob's secret", "for bob only", device=theirs.device)
        await sync_to_async(theirs.client().post)("/api/v1/telemetry", {"data": {"power": "on"}}, format="json")
        await sync_to_async(commands.send)(theirs.device, "set_state", {"power": "off"}, source="user")
        await sync_to_async(own.client().post)("/api/v1/telemetry", {"data": {"marker": 1}}, format="json")
        await sync_to_async(notify)(alice, "info", "Marker")
        heard = []
        while not heard or heard[-1].get("data", {}).get("title") != "Marker":
            heard.append(await page.receive_json_from(5))
        leaks = [m for m in heard if m.get("device") == theirs.pk or "Bob" in str(m.get("data", {}))]
        tally.record("bob's events reaching alice's socket", 200 if leaks else 403)
        assert any(m.get("type") == "telemetry" and m["device"] == own.pk for m in heard), "control: own telemetry"
        await page.disconnect()

    async_to_sync(scenario)()

    record_figure(request, "WebSocket: user A joining B's device group / hearing B", tally.figure)
    assert not tally.holes, tally.holes


def test_staff_may_follow_any_device(redis_layer, staff, other_device):
    staff_cookie = cookie_of(staff)

    async def scenario():
        page = socket(staff_cookie)
        assert (await page.connect())[0]
        await page.send_json_to({"type": "subscribe", "devices": [other_device.pk]})
        assert await page.receive_json_from(5) == {"type": "subscribed", "devices": [other_device.pk]}
        await page.disconnect()

    async_to_sync(scenario)()
