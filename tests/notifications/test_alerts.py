"""Alert rules on ingest: a breach raises one alert and one notification per cooldown."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from devices.models import DeviceGroup
from notifications import alerts
from notifications.models import Alert, AlertCooldown, AlertRule, Notification

pytestmark = pytest.mark.django_db


def make_rule(owner, *, device=None, group=None, measurement="temperature", operator=">", threshold=30.0, **extra):
    return AlertRule.objects.create(
        owner=owner,
        name=extra.pop("name", "Too hot"),
        device=device,
        group=group,
        measurement=measurement,
        operator=operator,
        threshold=threshold,
        **extra,
    )


def post(keyed_device, data: dict | list):
    body = data if isinstance(data, list) else {"data": data}
    response = keyed_device.client().post("/api/v1/telemetry", body, format="json")
    assert response.status_code == 201, response.json()


def alert_notifications(user):
    return Notification.objects.filter(user=user, kind="alert")


def test_breach_raises_one_alert_and_one_notification_per_cooldown(alice, device):
    rule = make_rule(alice, device=device.device, severity="critical", cooldown=600)
    post(device, {"temperature": 35.5})
    post(device, {"temperature": 36.0})

    alert = Alert.objects.get()
    assert (alert.rule, alert.device, alert.value, alert.status) == (rule, device.device, 35.5, "open")
    assert (alert.severity, alert.condition, alert.owner) == ("critical", "> 30", alice)
    notification = alert_notifications(alice).get()
    assert notification.level == "error" and notification.device == device.device
    assert "Too hot" in notification.title and "35.5" in notification.message

    AlertCooldown.objects.filter(rule=rule).update(until=timezone.now() - timedelta(seconds=1))
    post(device, {"temperature": 37.0})
    assert list(Alert.objects.order_by("triggered_at").values_list("value", flat=True)) == [35.5, 37.0]
    assert alert_notifications(alice).count() == 2


def test_value_within_the_threshold_raises_nothing(alice, device):
    make_rule(alice, device=device.device)
    post(device, {"temperature": 30.0, "humidity": 99})
    assert not Alert.objects.exists() and not alert_notifications(alice).exists()


@pytest.mark.parametrize(
    ("operator", "value", "fires"),
    [
        (">", 10.5, True),
        (">", 10, False),
        (">=", 10, True),
        (">=", 9.99, False),
        ("<", 9, True),
        ("<", 10, False),
        ("<=", 10, True),
        ("<=", 10.01, False),
        ("==", 10, True),
        ("==", 10.5, False),
        ("!=", 11, True),
        ("!=", 10.0, False),
    ],
)
def test_operators(alice, device, operator, value, fires):
    make_rule(alice, device=device.device, operator=operator, threshold=10)
    post(device, {"temperature": value})
    assert Alert.objects.exists() is fires


def test_booleans_compare_as_one_and_zero_and_text_never_fires(alice, device):
    make_rule(alice, device=device.device, measurement="door_open", operator="==", threshold=1, name="Door")
    make_rule(alice, device=device.device, measurement="mode", operator="!=", threshold=0, name="Mode")
    post(device, {"door_open": True, "mode": "eco"})
    assert list(Alert.objects.values_list("name", "value")) == [("Door", 1.0)]


def test_only_the_newest_value_of_a_batch_counts(alice, device):
    make_rule(alice, device=device.device)
    # Newest by timestamp, not by position: the breach is the older point.
    post(
        device,
        [
            {"data": {"temperature": 20}, "timestamp": 1_751_000_060},
            {"data": {"temperature": 99}, "timestamp": 1_751_000_000},
        ],
    )
    assert not Alert.objects.exists()
    post(
        device,
        [
            {"data": {"temperature": 99}, "timestamp": 1_751_000_120},
            {"data": {"temperature": 20}, "timestamp": 1_751_000_090},
        ],
    )
    assert Alert.objects.get().value == 99


def test_group_rule_watches_every_device_of_the_group(alice, make_device):
    member, outsider = make_device(alice, "member"), make_device(alice, "outsider")
    group = DeviceGroup.objects.create(owner=alice, name="Boilers")
    group.devices.add(member.device)
    make_rule(alice, group=group)

    post(member, {"temperature": 40})
    post(outsider, {"temperature": 40})
    assert list(Alert.objects.values_list("device__name", flat=True)) == ["member"]

    group.devices.add(outsider.device)  # joining the group takes effect at once, cached rules or not
    post(outsider, {"temperature": 41})
    assert sorted(Alert.objects.values_list("device__name", flat=True)) == ["member", "outsider"]


def test_group_rule_cools_down_per_device(alice, make_device):
    first, second = make_device(alice, "first"), make_device(alice, "second")
    group = DeviceGroup.objects.create(owner=alice, name="Boilers")
    group.devices.add(first.device, second.device)
    make_rule(alice, group=group, cooldown=600)
    for keyed in (first, second, first, second):
        post(keyed, {"temperature": 50})
    assert sorted(Alert.objects.values_list("device__name", flat=True)) == ["first", "second"]


def test_disabled_rule_is_silent_until_enabled(alice, device):
    rule = make_rule(alice, device=device.device, enabled=False)
    post(device, {"temperature": 50})
    assert not Alert.objects.exists()

    rule.enabled = True
    rule.save()
    post(device, {"temperature": 51})
    assert Alert.objects.get().value == 51

    rule.delete()
    AlertCooldown.objects.all().delete()
    post(device, {"temperature": 52})
    assert Alert.objects.count() == 1
    assert Alert.objects.get().rule is None, "the alert outlives its rule"


def test_muted_alert_kind_keeps_the_alert_but_sends_no_notification(alice, device):
    alice.muted_notification_kinds = ["alert"]
    alice.save()
    make_rule(alice, device=device.device)
    post(device, {"temperature": 50})
    assert Alert.objects.count() == 1
    assert not alert_notifications(alice).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_breaches_raise_a_single_alert(alice, device):
    rule = make_rule(alice, device=device.device, cooldown=600)
    start = threading.Barrier(8)
    raised = []

    def breach():
        try:
            start.wait()
            raised.append(alerts.fire(rule, device.pk, 99.0))
        finally:
            connection.close()

    threads = [threading.Thread(target=breach) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([a for a in raised if a is not None]) == 1
    assert Alert.objects.count() == 1 and alert_notifications(alice).count() == 1

    AlertCooldown.objects.update(until=timezone.now() - timedelta(seconds=1))
    start.reset()
    raised.clear()
    threads = [threading.Thread(target=breach) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([a for a in raised if a is not None]) == 1, "an expired cooldown is claimed once as well"
    assert Alert.objects.count() == 2
