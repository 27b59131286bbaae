"""Personal API tokens: shown once, stored hashed, revocable, issued from the command line."""

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiToken


def client_with(raw: str, keyword: str = "Token") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {raw}")
    return client


def test_issue_stores_only_the_hash(alice):
    token, raw = ApiToken.issue(alice, name="laptop")

    assert raw.startswith("ift_")
    assert len(raw) > 40
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert stored["token_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert stored["token_prefix"] == raw[:12]
    assert raw not in {str(value) for value in stored.values()}
    assert token.is_active


def test_each_token_is_different(alice):
    assert ApiToken.issue(alice)[1] != ApiToken.issue(alice)[1]


def test_token_authenticates_its_user_and_records_use(alice, device):
    token, raw = ApiToken.issue(alice)

    response = client_with(raw).get("/api/v1/devices")

    assert response.status_code == 200
    assert [d["name"] for d in response.json()["results"]] == ["alice-sensor"]
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_token_is_refused(alice, device):
    token, raw = ApiToken.issue(alice)
    client = client_with(raw)
    assert client.get("/api/v1/devices").status_code == 200

    token.revoke()

    assert not token.is_active
    assert client.get("/api/v1/devices").status_code == 401
    assert client.get(f"/api/v1/telemetry/{device.pk}/latest").status_code == 401


def test_revoking_one_token_leaves_the_others(alice):
    first, _ = ApiToken.issue(alice)
    _, second_raw = ApiToken.issue(alice)

    first.revoke()

    assert client_with(second_raw).get("/api/v1/devices").status_code == 200


def test_token_of_a_deactivated_user_is_refused(alice):
    _, raw = ApiToken.issue(alice)
    alice.is_active = False
    alice.save()

    assert client_with(raw).get("/api/v1/devices").status_code == 401


@pytest.mark.parametrize("header", ["Token", "Token a b", "Bearer {raw}", "{raw}"])
def test_malformed_authorization_header_does_not_authenticate(alice, header):
    _, raw = ApiToken.issue(alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.format(raw=raw))

    assert client.get("/api/v1/devices").status_code == 401


def test_keyword_is_case_insensitive(alice):
    _, raw = ApiToken.issue(alice)
    assert client_with(raw, "token").get("/api/v1/devices").status_code == 200


def test_issue_token_command_prints_the_token_last(alice, device):
    out = StringIO()

    call_command("issue_token", "alice", "--name", "ci", stdout=out)

    lines = out.getvalue().strip().splitlines()
    raw = lines[-1]
    assert raw.startswith("ift_")
    assert "alice" in lines[0]
    token = ApiToken.objects.get(user=alice)
    assert token.name == "ci"
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    response = client_with(raw).get(f"/api/v1/telemetry/{device.pk}/latest")
    assert response.status_code == 200


def test_issue_token_command_for_staff_gives_an_admin_token(staff):
    out = StringIO()
    call_command("issue_token", "operator", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]

    assert client_with(raw, "admin").get("/api/v1/admin/stats").status_code == 200


def test_issue_token_command_for_an_unknown_user_fails(db):
    with pytest.raises(CommandError, match="nobody"):
        call_command("issue_token", "nobody", stdout=StringIO())
    assert not ApiToken.objects.exists()
