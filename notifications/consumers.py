"""``/ws/notifications/``: one socket per browser page for notifications and live device data.

The socket joins ``user.<id>`` (notifications, alerts) on connect. The page then asks for
devices: ``{"type": "subscribe", "devices": [3, 7]}`` joins ``device.<id>`` for each device the
user owns (staff: any device) and answers ``{"type": "subscribed", "devices": [...]}``; every
other id gets ``{"type": "error", "code": "device_not_found", "device": id}``, the same whether
the device exists or not. ``unsubscribe`` leaves, ``ping`` answers ``pong``. Group messages
reach the socket through this process's relay (``notifications/relay.py``), not its own channel.

An anonymous socket is accepted and closed at once with code 4401, so the page can tell
"log in again" from a dropped connection (which it retries). A handshake from a foreign
origin never gets this far: ``AllowedHostsOriginValidator`` rejects it (HTTP 403).
"""

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from devices.models import Device

from .live import device_group, user_group
from .relay import daphne_protocol, relay

CLOSE_UNAUTHENTICATED = 4401
MAX_DEVICES_PER_SOCKET = 200


@database_sync_to_async
def visible_device_ids(user, device_ids: list[int]) -> set[int]:
    devices = Device.objects.filter(pk__in=device_ids)
    if not user.is_staff:
        devices = devices.filter(owner=user)
    return set(devices.values_list("pk", flat=True))


def requested_devices(content: dict) -> list[int] | None:
    """``devices`` (a list of ids) or ``device`` (one id) of a client message; None when malformed."""
    ids = content.get("devices", [content["device"]] if "device" in content else None)
    if not isinstance(ids, list) or not ids:
        return None
    if not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        return None
    return list(dict.fromkeys(ids))


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.device_ids: set[int] = set()
        self.groups_joined: list[str] = []
        self.authenticated = bool(self.user and self.user.is_authenticated)
        await self.accept()
        if not self.authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self._join(user_group(self.user.pk))

    async def disconnect(self, code: int) -> None:
        self._leave_all()

    async def __call__(self, scope, receive, send) -> None:
        self.daphne_protocol = daphne_protocol(send)
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._leave_all()  # also when a handler failed and ``disconnect`` never ran

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            content = json.loads(text_data or "")
        except ValueError:
            await self._error("invalid_json", "Messages must be JSON objects.")
            return
        if not isinstance(content, dict):
            await self._error("invalid_message", "Messages must be JSON objects.")
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict, **kwargs) -> None:
        if not self.authenticated:
            return  # closed for want of a login; nothing more is answered
        kind = content.get("type")
        if kind == "subscribe":
            await self._subscribe(content)
        elif kind == "unsubscribe":
            await self._unsubscribe(content)
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self._error("unknown_type", "Known message types: subscribe, unsubscribe, ping.")

    async def _subscribe(self, content: dict) -> None:
        ids = requested_devices(content)
        if ids is None:
            await self._error("invalid_devices", "Send 'devices': a list of device ids.")
            return
        new = [i for i in ids if i not in self.device_ids]
        if len(self.device_ids) + len(new) > MAX_DEVICES_PER_SOCKET:
            await self._error("too_many_devices", f"A socket follows at most {MAX_DEVICES_PER_SOCKET} devices.")
            return
        allowed = await visible_device_ids(self.user, new) if new else set()
        for device_id in new:
            if device_id in allowed:
                await self._join(device_group(device_id))
                self.device_ids.add(device_id)
            else:
                await self._error("device_not_found", "No such device of yours.", device=device_id)
        await self.send_json({"type": "subscribed", "devices": sorted(i for i in ids if i in self.device_ids)})

    async def _unsubscribe(self, content: dict) -> None:
        ids = requested_devices(content)
        if ids is None:
            await self._error("invalid_devices", "Send 'devices': a list of device ids.")
            return
        for device_id in ids:
            if device_id in self.device_ids:
                group = device_group(device_id)
                relay(self.channel_layer).leave(group, self)
                self.groups_joined.remove(group)
                self.device_ids.discard(device_id)
        await self.send_json({"type": "unsubscribed", "devices": ids})

    async def _join(self, group: str) -> None:
        """Group messages reach the socket through this process's relay, not the socket's own channel."""
        await relay(self.channel_layer).join(group, self)
        self.groups_joined.append(group)

    def _leave_all(self) -> None:
        for group in getattr(self, "groups_joined", ()):
            relay(self.channel_layer).leave(group, self)
        self.groups_joined = []

    async def _error(self, code: str, message: str, **extra) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, **extra})
