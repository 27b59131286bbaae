"""What IoTFlow tells a person: one Notification per event, per user."""

from django.conf import settings
from django.db import models


class Notification(models.Model):
    class Level(models.TextChoices):
        INFO = "info"
        SUCCESS = "success"
        WARNING = "warning"
        ERROR = "error"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    kind = models.CharField(max_length=50, blank=True, db_index=True, help_text="Event kind, e.g. device_offline.")
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    device = models.ForeignKey("devices.Device", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.title} → {self.user}"

    def as_message(self) -> dict:
        """The WebSocket message shape: {"type": "notification", "data": {...}}."""
        return {
            "type": "notification",
            "data": {
                "id": self.pk,
                "type": self.level,
                "kind": self.kind,
                "title": self.title,
                "message": self.message,
                "device": self.device_id,
                "timestamp": self.created_at.isoformat(),
            },
        }
