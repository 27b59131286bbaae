"""WebSockets against the real ASGI application, with Redis as the channel layer."""

from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings

from notifications import alerts, live
from tests.conftest import session_client

SOCKET_PATH = "/ws/notifications/"


@pytest.fixture(autouse=True)
def _fresh_rule_cache():
    """Rules cached by an earlier test must not meet a device that reuses an id (SQLite rolls ids back)."""
    alerts.rule_cache.clear()
    yield
    alerts.rule_cache.clear()


@pytest.fixture
def redis_layer(private_redis, settings):
    """A Redis pub/sub channel layer on the test's own Redis, as in production."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [private_redis.url], "prefix": "iotflow-test"},
        }
    }
    yield private_redis
    live.wait_until_sent(5)


def login(user) -> bytes:
    """The Cookie header of a browser where ``user`` logged in (call it outside async code)."""
    session = session_client(user).cookies[settings.SESSION_COOKIE_NAME].value
    return f"{settings.SESSION_COOKIE_NAME}={session}".encode()


def socket(cookie: bytes | None = None, origin: str | None = "http://testserver") -> WebsocketCommunicator:
    """A browser's socket to the real ASGI application, with ``cookie`` (if any), from ``origin`` (if any)."""
    from iotflow.asgi import application

    headers = []
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, SOCKET_PATH, headers=headers)


async def receive_type(communicator: WebsocketCommunicator, kind: str, timeout: float = 5) -> dict:
    """The next message of type ``kind``, skipping others (a device page gets several kinds)."""
    while True:
        message = await communicator.receive_json_from(timeout)
        if message["type"] == kind:
            return message


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run an async scenario from a sync test; its database calls come back to this thread."""
    async_to_sync(scenario)()
