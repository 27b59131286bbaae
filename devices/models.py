"""Devices, their groups, keys and configuration."""

import base64
import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import hash_secret


class DeviceGroup(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="device_groups")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_group_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class Device(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"
        MAINTENANCE = "maintenance"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    device_type = models.CharField(max_length=50, default="sensor")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    location = models.CharField(max_length=200, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True)
    hardware_version = models.CharField(max_length=50, blank=True)
    groups = models.ManyToManyField(DeviceGroup, blank=True, related_name="devices")
    api_key_prefix = models.CharField(max_length=8, editable=False, help_text="First characters of the API key.")
    api_key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_seen = models.DateTimeField(null=True, blank=True, db_index=True)
    last_metadata = models.JSONField(default=dict, blank=True, help_text="Metadata of the latest telemetry record.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_device_name_per_owner")]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    def set_new_api_key(self) -> str:
        """Give the device a fresh key and return it; only its hash is kept."""
        raw = secrets.token_urlsafe(24)
        self.api_key_prefix = raw[:8]
        self.api_key_hash = hash_secret(raw)
        if self.pk:
            self.key_rotated_at = timezone.now()
        return raw

    @property
    def is_online(self) -> bool:
        if self.last_seen is None:
            return False
        return timezone.now() - self.last_seen < timedelta(seconds=settings.DEVICE_ONLINE_SECONDS)

    @property
    def mqtt_username(self) -> str:
        return f"device-{self.pk}"

    @property
    def mqtt_topic_prefix(self) -> str:
        return f"{settings.MQTT_TOPIC_PREFIX}/{self.pk}/"


def mqtt_password_for(api_key: str) -> str:
    """The device's MQTT password, derived from its API key so neither is stored in clear."""
    digest = hashlib.sha256(b"iotflow-mqtt:" + api_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class DeviceConfiguration(models.Model):
    """One configuration entry (key → JSON value) a device reads and reports."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="configuration")
    key = models.CharField(max_length=100)
    value = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["device", "key"], name="unique_config_key_per_device")]

    def __str__(self) -> str:
        return f"{self.key}={self.value!r}"
