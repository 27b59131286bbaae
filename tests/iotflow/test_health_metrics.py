"""Monitoring and self-description: /health, /metrics, the OpenAPI schema and its docs page."""

import re

import pytest
import yaml


def test_health_answers_without_credentials(client, db):
    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["version"]
    assert "checks" not in body
    assert "no-cache" in response["Cache-Control"]


def test_detailed_health_reports_each_dependency(client, db):
    response = client.get("/health", {"detailed": "true"})

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) >= {"database", "cache", "telemetry"}
    assert checks["database"]["status"] == "healthy"
    assert checks["database"]["vendor"] in ("postgresql", "sqlite")
    assert checks["cache"]["status"] == "healthy"
    assert checks["telemetry"] == {**checks["telemetry"], "status": "healthy", "backend": "sql"}
    assert all(check["latency_ms"] >= 0 for check in checks.values())


def test_health_can_include_chosen_checks(client, db):
    checks = client.get("/health", {"include": "cache,unknown"}).json()["checks"]
    assert list(checks) == ["cache"]


def test_health_reports_a_broken_cache_as_unhealthy(client, db, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }

    response = client.get("/health", {"include": "cache"})

    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert response.json()["checks"]["cache"]["status"] == "unhealthy"


def test_health_accepts_only_get(client, db):
    assert client.post("/health").status_code == 405


def metric_value(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}{{{re.escape(labels)}}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_stored_telemetry_points(client, device):
    before = metric_value(client.get("/metrics").content.decode(), "iotflow_telemetry_points_total", 'transport="http"')

    response = device.client().post("/api/v1/telemetry", {"data": {"t": 1, "h": 2, "p": 3}}, format="json")
    assert response.status_code == 201

    text = client.get("/metrics").content.decode()
    assert "# TYPE iotflow_telemetry_points_total counter" in text
    assert metric_value(text, "iotflow_telemetry_points_total", 'transport="http"') == before + 3


def test_metrics_count_rejected_records(client, device):
    name = "iotflow_telemetry_rejected_total"
    before = metric_value(client.get("/metrics").content.decode(), name, 'transport="http"')

    assert device.client().post("/api/v1/telemetry", {"data": {"t": [1]}}, format="json").status_code == 400

    after = metric_value(client.get("/metrics").content.decode(), name, 'transport="http"')
    assert after == before + 1


@pytest.fixture
def schema(client, db) -> dict:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


V1_PATHS = [
    "/api/v1/devices/register",
    "/api/v1/devices/status",
    "/api/v1/devices/heartbeat",
    "/api/v1/devices/config",
    "/api/v1/devices/mqtt-credentials",
    "/api/v1/devices/telemetry",
    "/api/v1/telemetry",
    "/api/v1/telemetry/status",
    "/api/v1/telemetry/{device_id}",
    "/api/v1/telemetry/{device_id}/latest",
    "/api/v1/telemetry/{device_id}/aggregated",
    "/api/v1/admin/devices",
    "/api/v1/admin/devices/{id}",
    "/api/v1/admin/devices/{id}/status",
    "/api/v1/admin/stats",
    "/api/v1/admin/cache/device-status",
    "/api/v1/admin/cache/devices/{id}",
]


def test_schema_lists_the_v1_endpoints(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "IoTFlow API"
    missing = [path for path in V1_PATHS if path not in schema["paths"]]
    assert not missing
    assert {"get", "delete"} <= set(schema["paths"]["/api/v1/telemetry/{device_id}"])
    assert {"get", "put"} <= set(schema["paths"]["/api/v1/devices/config"])


def test_the_docs_group_endpoints_by_what_they_work_on(schema):
    tags = {
        path: {tag for operation in operations.values() for tag in operation.get("tags", [])}
        for path, operations in schema["paths"].items()
    }
    assert tags["/api/v1/telemetry/{device_id}/latest"] == {"telemetry"}
    assert tags["/api/v1/devices/{id}/commands"] == {"devices"}
    assert tags["/api/v1/alerts/{id}/acknowledge"] == {"alerts"}
    assert tags["/api/v1/admin/stats"] == {"admin"}


def test_schema_as_json(client, db):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert "/api/v1/devices/register" in response.json()["paths"]


def test_docs_page_is_served_without_a_cdn(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page.lower()
    assert "/api/schema/" in page
    external = re.findall(r"""(?:src|href)=["'](https?:)?//[^"']+""", page)
    assert not external
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com"):
        assert cdn not in page


def test_docs_assets_are_served_locally(client, db):
    page = client.get("/api/docs/").content.decode()
    scripts = re.findall(r"""<script[^>]+src=["']([^"']+)["']""", page)
    assert scripts
    assert all(src.startswith("/static/") for src in scripts)
