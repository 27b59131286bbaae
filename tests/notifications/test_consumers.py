"""The notifications socket: who may open it, what each user may follow, and what reaches them."""

from datetime import datetime

import pytest
from asgiref.sync import sync_to_async

from devices import commands
from notifications import notify
from notifications.consumers import CLOSE_UNAUTHENTICATED

from .conftest import login, receive_type, run, socket

pytestmark = pytest.mark.django_db(transaction=True)


def test_anonymous_socket_is_closed_with_4401(redis_layer):
    async def scenario():
        communicator = socket(cookie=None)
        connected, _ = await communicator.connect()
        closing = await communicator.receive_output(1)
        assert closing["type"] == "websocket.close" and closing["code"] == CLOSE_UNAUTHENTICATED
        await communicator.wait()

    run(scenario)


def test_logged_in_user_connects_only_from_an_allowed_origin(redis_layer, alice):
    alice_cookie = login(alice)

    async def scenario():
        for origin in ("http://evil.example", None):
            refused = socket(alice_cookie, origin=origin)
            connected, _ = await refused.connect()
            assert not connected, f"origin {origin!r} must be refused"
        accepted = socket(alice_cookie)
        connected, _ = await accepted.connect()
        assert connected
        await accepted.send_json_to({"type": "ping"})
        assert await accepted.receive_json_from() == {"type": "pong"}
        await accepted.disconnect()

    run(scenario)


def test_user_gets_own_notifications_and_never_another_users(redis_layer, alice, bob):
    alice_cookie = login(alice)
    bob_cookie = login(bob)

    async def scenario():
        alice_socket, bob_socket = socket(alice_cookie), socket(bob_cookie)
        assert (await alice_socket.connect())[0] and (await bob_socket.connect())[0]

        saved = await sync_to_async(notify)(alice, "warning", "Boiler hot", "90 °C", kind="alert")
        message = await alice_socket.receive_json_from(5)
        assert message == saved.as_message()
        assert message["data"]["title"] == "Boiler hot" and message["data"]["type"] == "warning"

        # Messages reach sockets in publishing order: bob's first message is his own, so alice's passed him by.
        await sync_to_async(notify)(bob, "info", "For bob")
        assert (await bob_socket.receive_json_from(5))["data"]["title"] == "For bob"
        assert await bob_socket.receive_nothing(0.2)
        await alice_socket.disconnect()
        await bob_socket.disconnect()

    run(scenario)


def test_user_cannot_follow_another_users_device(redis_layer, bob, device):
    bob_cookie = login(bob)

    async def scenario():
        bob_socket = socket(bob_cookie)
        await bob_socket.connect()
        await bob_socket.send_json_to({"type": "subscribe", "devices": [device.pk, 999_999]})
        errors = [await bob_socket.receive_json_from(), await bob_socket.receive_json_from()]
        assert [(e["type"], e["code"], e["device"]) for e in errors] == [
            ("error", "device_not_found", device.pk),
            ("error", "device_not_found", 999_999),
        ], "another user's device reads exactly like a missing one"
        assert await bob_socket.receive_json_from() == {"type": "subscribed", "devices": []}

        await sync_to_async(device.client().post)("/api/v1/telemetry", {"data": {"t": 1}}, format="json")
        await sync_to_async(notify)(bob, "info", "Marker")
        assert (await bob_socket.receive_json_from(5))["data"]["title"] == "Marker", "no telemetry of alice's device"
        await bob_socket.disconnect()

    run(scenario)


def test_telemetry_posted_over_http_reaches_the_subscribed_page(redis_layer, alice, device):
    alice_cookie = login(alice)

    async def scenario():
        page = socket(alice_cookie)
        await page.connect()
        await page.send_json_to({"type": "subscribe", "device": device.pk})
        assert await page.receive_json_from() == {"type": "subscribed", "devices": [device.pk]}

        batch = [
            {"data": {"temperature": 21.0, "door": "open"}, "timestamp": "2025-07-02T14:30:00Z"},
            {"data": {"temperature": 22.5}, "timestamp": "2025-07-02T14:31:00Z"},
        ]
        response = await sync_to_async(device.client().post)("/api/v1/telemetry", batch, format="json")
        assert response.status_code == 201

        telemetry = await receive_type(page, "telemetry")
        seen = datetime.fromisoformat(telemetry.pop("seen"))
        await sync_to_async(device.device.refresh_from_db)()
        assert seen == device.device.last_seen, "seen: when it was heard from, as its last seen records"
        assert telemetry == {
            "type": "telemetry",
            "device": device.pk,
            "data": {"temperature": 22.5, "door": "open"},
            "ts": "2025-07-02T14:31:00.000Z",
        }, "one message per batch with the newest value of each measurement"
        health = await receive_type(page, "device_health")
        assert health["device"] == device.pk and health["data"]["health"] == "online"
        await page.disconnect()

    run(scenario)


def test_unsubscribed_page_gets_no_more_telemetry(redis_layer, alice, device):
    alice_cookie = login(alice)

    async def scenario():
        page = socket(alice_cookie)
        await page.connect()
        await page.send_json_to({"type": "subscribe", "devices": [device.pk]})
        await receive_type(page, "subscribed")
        await page.send_json_to({"type": "unsubscribe", "devices": [device.pk]})
        assert await page.receive_json_from() == {"type": "unsubscribed", "devices": [device.pk]}

        await sync_to_async(device.client().post)("/api/v1/telemetry", {"data": {"t": 1}}, format="json")
        await sync_to_async(notify)(alice, "info", "Marker")
        assert (await page.receive_json_from(5))["type"] == "notification"
        await page.disconnect()

    run(scenario)


def test_a_page_leaving_a_device_leaves_it_followed_by_the_others(redis_layer, alice, device):
    """Pages of one process share the subscription to a group: one leaving must not end it for the rest."""
    alice_cookie = login(alice)

    async def scenario():
        leaving, closing, staying = socket(alice_cookie), socket(alice_cookie), socket(alice_cookie)
        for page in (leaving, closing, staying):
            await page.connect()
            await page.send_json_to({"type": "subscribe", "devices": [device.pk]})
            await receive_type(page, "subscribed")
        await leaving.send_json_to({"type": "unsubscribe", "devices": [device.pk]})
        await receive_type(leaving, "unsubscribed")
        await closing.disconnect()

        await sync_to_async(device.client().post)("/api/v1/telemetry", {"data": {"t": 1}}, format="json")
        assert (await receive_type(staying, "telemetry"))["data"] == {"t": 1}
        await sync_to_async(notify)(alice, "info", "Marker")
        heard = [await leaving.receive_json_from(5)]
        while heard[-1].get("data", {}).get("title") != "Marker":
            heard.append(await leaving.receive_json_from(5))
        assert not [m for m in heard if m.get("device") == device.pk], "nothing of the device after leaving"
        await leaving.disconnect()
        await staying.disconnect()

    run(scenario)


def test_staff_may_follow_any_device(redis_layer, staff, device):
    staff_cookie = login(staff)

    async def scenario():
        page = socket(staff_cookie)
        await page.connect()
        await page.send_json_to({"type": "subscribe", "devices": [device.pk]})
        assert await page.receive_json_from() == {"type": "subscribed", "devices": [device.pk]}
        await page.disconnect()

    run(scenario)


def test_command_status_changes_reach_the_device_page(redis_layer, alice, device):
    alice_cookie = login(alice)

    async def scenario():
        page = socket(alice_cookie)
        await page.connect()
        await page.send_json_to({"type": "subscribe", "devices": [device.pk]})
        await receive_type(page, "subscribed")

        command = await sync_to_async(commands.send)(device.device, "turn_on")
        sent = await receive_type(page, "command")
        assert sent["device"] == device.pk
        assert sent["data"]["id"] == str(command.pk) and sent["data"]["status"] == "pending"

        await sync_to_async(commands.cancel)(command)
        cancelled = await receive_type(page, "command")
        assert cancelled["data"]["status"] == "cancelled" and cancelled["data"]["completed_at"]
        await page.disconnect()

    run(scenario)


def test_malformed_client_messages_get_errors_not_a_closed_socket(redis_layer, alice):
    alice_cookie = login(alice)

    async def scenario():
        page = socket(alice_cookie)
        await page.connect()
        for frame, code in [
            ("not json", "invalid_json"),
            ("[1, 2]", "invalid_message"),
            ('{"type": "dance"}', "unknown_type"),
            ('{"type": "subscribe", "devices": ["1"]}', "invalid_devices"),
            ('{"type": "subscribe", "devices": []}', "invalid_devices"),
        ]:
            await page.send_to(text_data=frame)
            answer = await page.receive_json_from()
            assert (answer["type"], answer["code"]) == ("error", code), frame
        await page.send_json_to({"type": "ping"})
        assert await page.receive_json_from() == {"type": "pong"}
        await page.disconnect()

    run(scenario)


def test_a_firing_rule_reaches_the_owners_pages_as_alert_and_notification(redis_layer, alice, device):
    from notifications.models import AlertRule

    AlertRule.objects.create(
        owner=alice, name="Too hot", device=device.device, measurement="temperature", operator=">", threshold=30
    )
    alice_cookie = login(alice)

    async def scenario():
        page = socket(alice_cookie)  # not following the device: alerts go to the user's own group
        await page.connect()
        await sync_to_async(device.client().post)("/api/v1/telemetry", {"data": {"temperature": 42}}, format="json")
        notification = await receive_type(page, "notification")
        assert notification["data"]["kind"] == "alert" and notification["data"]["device"] == device.pk
        alert = await receive_type(page, "alert")
        assert (alert["data"]["status"], alert["data"]["value"], alert["data"]["device"]) == ("open", 42.0, device.pk)
        await page.disconnect()

    run(scenario)
