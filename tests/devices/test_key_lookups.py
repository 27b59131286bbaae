"""Device-key lookups kept in each process's memory: used only while that process hears every key change."""

import pytest
import redis

from devices import keys
from devices.models import Device
from tests.integration.processes import wait_for


@pytest.fixture
def local_keys(settings, private_redis, monkeypatch):
    """Lookups as servers make them: Redis as the shared cache, and this process's memory following changes."""
    settings.REDIS_URL = private_redis.url
    settings.CACHES = {"default": {"BACKEND": "iotflow.cache.TolerantRedisCache", "LOCATION": private_redis.url}}
    monkeypatch.setattr(keys, "_local", keys._local.fresh())
    monkeypatch.setattr(keys, "_publishers", keys._publishers.fresh())
    local = keys.local_keys()
    assert local.subscribed.wait(10), "the process subscribes to key changes"
    yield local
    local.stop()


def renamed_behind_the_caches(device, name: str) -> None:
    """Change the row without the signals that drop cached lookups, to see which copy a lookup reads."""
    Device.objects.filter(pk=device.pk).update(name=name)


def test_a_lookup_is_answered_from_memory_and_each_caller_gets_its_own_copy(device, local_keys):
    first = keys.device_for_key(device.key)
    renamed_behind_the_caches(device, "renamed")
    second = keys.device_for_key(device.key)
    assert first.pk == second.pk == device.pk
    assert second.name == first.name != "renamed", "answered from memory"
    assert second is not first
    second.name = "changed by one request"
    assert keys.device_for_key(device.key).name == first.name, "no request sees another's changes"


def test_a_rotated_key_is_refused_at_once(device, local_keys):
    assert keys.device_for_key(device.key).pk == device.pk
    stored = Device.objects.get(pk=device.pk)
    new_key = stored.set_new_api_key()
    stored.save()
    assert keys.device_for_key(device.key) is None
    assert keys.device_for_key(new_key).pk == device.pk


def test_a_change_published_by_another_process_empties_this_processes_memory(device, local_keys, private_redis):
    assert keys.device_for_key(device.key).name == device.device.name
    renamed_behind_the_caches(device, "renamed")
    shared = redis.Redis.from_url(private_redis.url)
    shared.delete(*shared.keys("*device-key:*"))  # as the other process's forget_key_hashes() does
    shared.publish(keys.CHANNEL, Device.objects.get(pk=device.pk).api_key_hash)
    wait_for(lambda: keys.device_for_key(device.key).name == "renamed", 10, "the published change", interval=0.02)


def test_without_the_subscription_memory_is_not_trusted(device, local_keys, private_redis):
    assert keys.device_for_key(device.key).pk == device.pk
    redis.Redis.from_url(private_redis.url).shutdown(nosave=True)
    wait_for(lambda: not local_keys.live, 10, "noticing Redis is gone", interval=0.02)
    renamed_behind_the_caches(device, "renamed while Redis was away")
    assert keys.device_for_key(device.key).name == "renamed while Redis was away", "read from the database"
    Device.objects.filter(pk=device.pk).update(status=Device.Status.INACTIVE)
    assert keys.device_for_key(device.key).status == Device.Status.INACTIVE
