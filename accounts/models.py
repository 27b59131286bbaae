"""Users of IoTFlow and their personal API tokens."""

import hashlib
import secrets
import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

TIME_ZONE_CHOICES = sorted((tz, tz) for tz in zoneinfo.available_timezones())


def hash_secret(secret: str) -> str:
    """Tokens and keys are long random strings, so one SHA-256 is a safe, fast lookup key."""
    return hashlib.sha256(secret.encode()).hexdigest()


class User(AbstractUser):
    time_zone = models.CharField(max_length=64, choices=TIME_ZONE_CHOICES, default="UTC")
    muted_notification_kinds = models.JSONField(
        default=list, blank=True, help_text="Notification kinds (e.g. device_online) this user does not want."
    )

    class Meta:
        db_table = "accounts_user"


class ApiToken(models.Model):
    """A personal API token; only its hash is stored, the token is shown once."""

    PREFIX = "ift_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    token_prefix = models.CharField(max_length=12, editable=False, help_text="First characters, to recognise a token.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.token_prefix}… ({self.name or 'token'}) of {self.user}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def issue(cls, user: "User", name: str = "") -> tuple["ApiToken", str]:
        """Create a token and return it with its clear text, which is never stored."""
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, token_prefix=raw[:12], token_hash=hash_secret(raw))
        return token, raw

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])
