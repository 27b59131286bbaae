"""Shared fixtures: users, devices with their keys, and API clients that act as them."""

from dataclasses import dataclass

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from devices.models import Device


@dataclass
class KeyedDevice:
    """A device together with the clear-text key only its owner saw once."""

    device: Device
    key: str

    @property
    def pk(self) -> int:
        return self.device.pk

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=self.key)
        return client


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_user(db):
    def make(username: str, *, password: str = "s3cret-pass-123", **extra) -> User:
        return User.objects.create_user(username, password=password, **extra)

    return make


@pytest.fixture
def alice(make_user) -> User:
    return make_user("alice")


@pytest.fixture
def bob(make_user) -> User:
    return make_user("bob")


@pytest.fixture
def staff(make_user) -> User:
    return make_user("operator", is_staff=True)


@pytest.fixture
def make_device(db):
    def make(owner: User, name: str = "sensor-1", **fields) -> KeyedDevice:
        device = Device(owner=owner, name=name, **fields)
        key = device.set_new_api_key()
        device.save()
        return KeyedDevice(device, key)

    return make


@pytest.fixture
def device(make_device, alice) -> KeyedDevice:
    return make_device(alice, "alice-sensor")


@pytest.fixture
def other_device(make_device, bob) -> KeyedDevice:
    return make_device(bob, "bob-sensor")


def token_client(user: User, keyword: str = "Token") -> APIClient:
    _, raw = ApiToken.issue(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {raw}")
    return client


@pytest.fixture
def alice_client(alice) -> APIClient:
    return token_client(alice)


@pytest.fixture
def bob_client(bob) -> APIClient:
    return token_client(bob)


@pytest.fixture
def admin_client_api(staff) -> APIClient:
    """The seed's ``Authorization: admin <token>`` header with a staff user's token."""
    return token_client(staff, "admin")
