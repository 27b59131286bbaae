"""The live sender thread: messages reach Redis in order, in rounds at most one interval apart.

A real Redis of the test's own and the pub/sub channel layer as production configures it; a
Redis subscriber stands in for the ws process.
"""

import pytest
import redis
from channels_redis.pubsub import RedisPubSubChannelLayer
from prometheus_client import CollectorRegistry, Histogram

from notifications import live
from tests.integration.processes import wait_for

GROUP = "device.7"


def subscriber(url: str, layer: RedisPubSubChannelLayer):
    """A Redis subscription to the group's channel and a function returning the texts received so far."""
    pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"iotflow-test__group__{GROUP}")
    received: list[str] = []

    def texts() -> list[str]:
        while (message := pubsub.get_message(timeout=0.01)) is not None:
            received.append(layer.deserialize(message["data"])["text"])
        return received

    return pubsub, texts


def envelope(n: int) -> dict:
    return {"type": live.HANDLER, "message": {"n": n}, "text": str(n)}


@pytest.fixture
def rounds(monkeypatch) -> CollectorRegistry:
    """A registry of its own for the sender's rounds histogram (``rounds_count``, ``rounds_sum``, buckets)."""
    registry = CollectorRegistry()
    monkeypatch.setattr(live, "LIVE_ROUNDS", Histogram("rounds", "test", buckets=(1, 2, 4, 8), registry=registry))
    return registry


@pytest.fixture
def channel(private_redis):
    """(the pub/sub layer on the test's Redis, a function returning the texts its group channel received)."""
    layer = RedisPubSubChannelLayer(hosts=[private_redis.url], prefix="iotflow-test")
    pubsub, texts = subscriber(private_redis.url, layer)
    yield layer, texts
    pubsub.close()


def test_messages_arriving_within_the_interval_go_in_one_round_in_order(channel, rounds):
    layer, texts = channel
    sender = live.Sender(100, interval=2.0)

    sender.submit(layer, GROUP, envelope(1))
    wait_for(lambda: texts() == ["1"], 10, "the first message", interval=0.01)
    for n in range(2, 6):  # within the interval that began when the first round ended
        sender.submit(layer, GROUP, envelope(n))
    assert sender.wait_idle(10)
    wait_for(lambda: len(texts()) == 5, 10, "the other messages", interval=0.01)

    assert texts() == ["1", "2", "3", "4", "5"]
    assert rounds.get_sample_value("rounds_count") == 2
    assert rounds.get_sample_value("rounds_bucket", {"le": "1.0"}) == 1  # the first went alone
    assert rounds.get_sample_value("rounds_sum") == 5


def test_without_an_interval_each_message_may_go_on_its_own(channel, rounds):
    layer, texts = channel
    sender = live.Sender(100, interval=0.0)

    for n in range(1, 4):
        sender.submit(layer, GROUP, envelope(n))
        wait_for(lambda n=n: len(texts()) == n, 10, f"message {n}", interval=0.01)

    assert texts() == ["1", "2", "3"]
    assert rounds.get_sample_value("rounds_count") == 3


def test_the_process_sender_takes_its_interval_from_the_settings(settings):
    settings.LIVE_SEND_INTERVAL_MS = 25
    assert live._senders.fresh().get().interval == 0.025
