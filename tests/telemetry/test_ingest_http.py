"""A device posts telemetry over HTTP and reads it back."""

from telemetry.backends import get_backend


def test_single_record_is_stored_and_read_back(device):
    client = device.client()
    response = client.post(
        "/api/v1/telemetry",
        {"data": {"temperature": 23.5, "online": True, "mode": "eco"}, "timestamp": "2025-07-02T14:30:00Z"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["points"] == 3

    history = client.get(f"/api/v1/telemetry/{device.pk}", {"start_time": "2025-07-02T00:00:00Z"}).json()
    values = {row["measurement"]: row["value"] for row in history["data"]}
    assert values == {"temperature": 23.5, "online": True, "mode": "eco"}
    assert {row["timestamp"] for row in history["data"]} == {"2025-07-02T14:30:00.000Z"}


def test_same_point_twice_is_stored_once(device):
    body = {"data": {"temperature": 20.0}, "timestamp": 1751466600}
    for _ in range(2):
        assert device.client().post("/api/v1/telemetry", body, format="json").status_code == 201
    assert get_backend().count(device.pk) == 1
