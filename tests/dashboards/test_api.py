"""``/api/v1/dashboards`` and ``/api/v1/charts``: the owner's own, staff all, anyone else's 404."""

from dashboards.models import Chart, Dashboard
from tests.conftest import token_client


def test_create_a_dashboard_and_a_chart_then_read_its_data(alice, alice_client, device, recent_temperatures):
    created = alice_client.post("/api/v1/dashboards", {"name": "Garden"}, format="json")
    assert created.status_code == 201, created.json()
    dashboard_id = created.json()["id"]
    chart = alice_client.post(
        "/api/v1/charts",
        {"dashboard": dashboard_id, "title": "Temperature", "chart_type": "gauge", "devices": [device.pk],
         "measurements": ["temperature"], "time_range": "1h", "min_value": 0, "max_value": 40},
        format="json",
    )  # fmt: skip
    assert chart.status_code == 201, chart.json()
    assert alice_client.get(f"/api/v1/dashboards/{dashboard_id}").json()["charts"] == [chart.json()["id"]]
    data = alice_client.get(f"/api/v1/charts/{chart.json()['id']}/data").json()
    assert data["type"] == "gauge" and data["series"][0]["latest"]["value"] == 20.0


def test_validation(alice_client, dashboard, device, other_device):
    base = {"dashboard": dashboard.pk, "title": "T", "measurements": ["t"], "devices": [device.pk]}
    assert alice_client.post("/api/v1/dashboards", {"name": "Home"}, format="json").status_code == 400
    foreign = alice_client.post("/api/v1/charts", {**base, "devices": [other_device.pk]}, format="json")
    assert foreign.status_code == 400 and "devices" in foreign.json()["errors"]
    absolute = alice_client.post("/api/v1/charts", {**base, "time_range": ""}, format="json")
    assert absolute.status_code == 400 and "start_at" in absolute.json()["errors"]
    assert alice_client.post("/api/v1/charts", {**base, "measurements": []}, format="json").status_code == 400


def test_others_dashboards_and_charts_are_not_found(bob, bob_client, staff, dashboard, chart):
    assert bob_client.get("/api/v1/dashboards").json()["results"] == []
    assert bob_client.get(f"/api/v1/dashboards/{dashboard.pk}").status_code == 404
    assert bob_client.patch(f"/api/v1/charts/{chart.pk}", {"title": "x"}, format="json").status_code == 404
    assert bob_client.get(f"/api/v1/charts/{chart.pk}/data").status_code == 404
    bobs = bob_client.post("/api/v1/charts", {"dashboard": dashboard.pk, "title": "x", "measurements": ["t"],
                                              "devices": []}, format="json")  # fmt: skip
    assert bobs.status_code == 400, "a chart cannot be put on someone else's dashboard"
    assert token_client(staff).get(f"/api/v1/charts/{chart.pk}").status_code == 200
    assert Chart.objects.get(pk=chart.pk).title == "Temperature" and Dashboard.objects.count() == 1


def test_rename_and_delete(alice_client, dashboard, chart):
    assert alice_client.patch(f"/api/v1/dashboards/{dashboard.pk}", {"name": "Shed"}, format="json").status_code == 200
    assert alice_client.delete(f"/api/v1/dashboards/{dashboard.pk}").status_code == 204
    assert not Chart.objects.exists()
