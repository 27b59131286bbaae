"""Alert rules and alerts over the user API: owners manage their own, staff all, others get 404."""

import pytest
from django.utils import timezone

from devices.models import DeviceGroup
from notifications.models import Alert, AlertRule

pytestmark = pytest.mark.django_db

RULES = "/api/v1/alert-rules"
ALERTS = "/api/v1/alerts"


def rule_body(**fields) -> dict:
    return {"name": "Too hot", "measurement": "temperature", "operator": ">", "threshold": 30, **fields}


def make_alert(owner, device, **fields) -> Alert:
    defaults = {
        "name": "Too hot",
        "measurement": "temperature",
        "condition": "> 30",
        "severity": "high",
        "value": 31.0,
        "triggered_at": timezone.now(),
    }
    return Alert.objects.create(owner=owner, device=device, **{**defaults, **fields})


class TestRules:
    def test_owner_creates_reads_updates_and_deletes_a_device_rule(self, alice_client, device):
        created = alice_client.post(RULES, rule_body(device=device.pk, severity="critical"), format="json")
        assert created.status_code == 201, created.json()
        rule = created.json()
        assert (rule["owner"], rule["device"], rule["group"], rule["cooldown"], rule["enabled"]) == (
            "alice",
            device.pk,
            None,
            300,
            True,
        )

        url = f"{RULES}/{rule['id']}"
        assert alice_client.get(url).json()["severity"] == "critical"
        patched = alice_client.patch(url, {"threshold": 35.5, "enabled": False}, format="json")
        assert patched.status_code == 200 and patched.json()["threshold"] == 35.5
        assert AlertRule.objects.get().enabled is False
        assert alice_client.delete(url).status_code == 204
        assert not AlertRule.objects.exists()

    def test_group_rule(self, alice_client, alice):
        group = DeviceGroup.objects.create(owner=alice, name="Boilers")
        response = alice_client.post(RULES, rule_body(group=group.pk), format="json")
        assert response.status_code == 201 and response.json()["group"] == group.pk

    @pytest.mark.parametrize(
        ("fields", "bad"),
        [
            ({"device": None}, "device"),
            ({"group": "new"}, "device"),
            ({"operator": "=~"}, "operator"),
            ({"threshold": "NaN"}, "threshold"),
            ({"severity": "urgent"}, "severity"),
            ({"cooldown": -1}, "cooldown"),
        ],
    )
    def test_invalid_rules_are_refused_with_field_errors(self, alice_client, alice, device, fields, bad):
        """Neither a device nor a group, or both; unknown operator or severity; NaN; negative cooldown."""
        body = rule_body(**{"device": device.pk, **fields})
        if body.get("group") == "new":
            body["group"] = DeviceGroup.objects.create(owner=alice, name="g").pk
        response = alice_client.post(RULES, body, format="json")
        assert response.status_code == 400 and bad in response.json()["errors"]

    def test_a_rule_cannot_watch_another_users_device_or_group(self, bob_client, alice, device):
        group = DeviceGroup.objects.create(owner=alice, name="Boilers")
        for target in ({"device": device.pk}, {"group": group.pk}):
            response = bob_client.post(RULES, rule_body(**target), format="json")
            assert response.status_code == 400, "another user's device reads as a missing one"

    def test_others_rules_are_404_and_staff_see_all(self, alice_client, bob_client, admin_client_api, device):
        rule = alice_client.post(RULES, rule_body(device=device.pk), format="json").json()
        assert bob_client.get(f"{RULES}/{rule['id']}").status_code == 404
        assert bob_client.delete(f"{RULES}/{rule['id']}").status_code == 404
        assert bob_client.get(RULES).json()["count"] == 0
        assert [r["id"] for r in admin_client_api.get(RULES).json()["results"]] == [rule["id"]]

    def test_rules_filter_by_device_and_enabled(self, alice_client, make_device, alice):
        one, two = make_device(alice, "one"), make_device(alice, "two")
        alice_client.post(RULES, rule_body(device=one.pk), format="json")
        alice_client.post(RULES, rule_body(device=two.pk, enabled=False), format="json")
        assert [r["device"] for r in alice_client.get(RULES, {"device": one.pk}).json()["results"]] == [one.pk]
        assert [r["device"] for r in alice_client.get(RULES, {"enabled": "false"}).json()["results"]] == [two.pk]


class TestAlerts:
    def test_workflow_open_acknowledged_resolved(self, alice_client, alice, device):
        alert = make_alert(alice, device.device)
        url = f"{ALERTS}/{alert.pk}"
        listed = alice_client.get(ALERTS).json()["results"]
        assert [(a["id"], a["status"], a["device_name"]) for a in listed] == [(alert.pk, "open", "alice-sensor")]

        acknowledged = alice_client.post(f"{url}/acknowledge")
        assert acknowledged.status_code == 200
        assert (acknowledged.json()["status"], acknowledged.json()["acknowledged_by"]) == ("acknowledged", "alice")
        first_ack = acknowledged.json()["acknowledged_at"]
        assert alice_client.post(f"{url}/acknowledge").json()["acknowledged_at"] == first_ack, "repeat is a no-op"

        resolved = alice_client.post(f"{url}/resolve")
        assert resolved.status_code == 200
        assert (resolved.json()["status"], resolved.json()["resolved_by"]) == ("resolved", "alice")
        again = alice_client.post(f"{url}/acknowledge")
        assert again.status_code == 400 and "status" in again.json()["errors"]

    def test_open_alert_can_be_resolved_directly(self, alice_client, alice, device):
        alert = make_alert(alice, device.device)
        body = alice_client.post(f"{ALERTS}/{alert.pk}/resolve").json()
        assert body["status"] == "resolved" and body["acknowledged_at"] is None

    def test_others_alerts_are_404_and_staff_act_on_all(self, bob_client, admin_client_api, alice, device):
        alert = make_alert(alice, device.device)
        assert bob_client.get(f"{ALERTS}/{alert.pk}").status_code == 404
        assert bob_client.post(f"{ALERTS}/{alert.pk}/acknowledge").status_code == 404
        assert bob_client.get(ALERTS).json()["count"] == 0
        response = admin_client_api.post(f"{ALERTS}/{alert.pk}/acknowledge")
        assert response.status_code == 200 and response.json()["acknowledged_by"] == "operator"

    def test_alerts_filter_by_status_severity_and_device(self, alice_client, alice, make_device):
        one, two = make_device(alice, "one"), make_device(alice, "two")
        low = make_alert(alice, one.device, severity="low")
        critical = make_alert(alice, two.device, severity="critical")
        done = make_alert(alice, one.device, severity="critical", status="resolved")

        def ids(**query):
            return {a["id"] for a in alice_client.get(ALERTS, query).json()["results"]}

        assert ids(status="open") == {low.pk, critical.pk}
        assert ids(severity="critical") == {critical.pk, done.pk}
        assert ids(status=["open", "resolved"], severity="critical") == {critical.pk, done.pk}
        assert ids(device=one.pk) == {low.pk, done.pk}
        assert alice_client.get(ALERTS, {"status": "lost"}).status_code == 400

    def test_get_is_not_an_acknowledgement(self, alice_client, alice, device):
        alert = make_alert(alice, device.device)
        assert alice_client.get(f"{ALERTS}/{alert.pk}/acknowledge").status_code == 405
        alert.refresh_from_db()
        assert alert.status == "open"
