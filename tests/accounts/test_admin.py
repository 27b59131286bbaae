"""Operators manage people and personal API tokens in the admin; a token's clear text is shown once."""

from accounts.models import ApiToken, User, hash_secret

TOKENS = "/admin/accounts/apitoken/"
DEVICES_API = "/api/v1/devices"


def api_answer(client, token: str) -> int:
    return client.get(DEVICES_API, HTTP_AUTHORIZATION=f"Token {token}").status_code


def test_user_list_searches_and_filters(admin_client, alice, bob):
    page = admin_client.get("/admin/accounts/user/", {"q": "alice", "is_staff__exact": "0"})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [alice]


def test_operator_adds_a_user_with_a_time_zone(admin_client):
    form = {
        "username": "carol",
        "usable_password": "true",
        "password1": "a-long-pass-phrase-42",
        "password2": "a-long-pass-phrase-42",
        "time_zone": "Europe/Paris",
    }
    response = admin_client.post("/admin/accounts/user/add/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors

    carol = User.objects.get(username="carol")
    assert carol.time_zone == "Europe/Paris"
    assert carol.check_password("a-long-pass-phrase-42")
    assert 'name="time_zone"' in admin_client.get(f"/admin/accounts/user/{carol.pk}/change/").text


def test_token_list_searches_by_user_and_filters_by_state(admin_client, alice, bob):
    active, _ = ApiToken.issue(alice, "ci")
    revoked, _ = ApiToken.issue(alice, "old")
    revoked.revoke()
    ApiToken.issue(bob, "bob's")

    page = admin_client.get(TOKENS, {"q": "alice"})
    assert page.status_code == 200
    assert {t.name for t in page.context["cl"].result_list} == {"ci", "old"}
    assert active.token_prefix in page.text
    assert active.token_hash not in page.text

    assert list(admin_client.get(TOKENS, {"q": "alice", "active": "yes"}).context["cl"].result_list) == [active]
    assert list(admin_client.get(TOKENS, {"q": "alice", "active": "no"}).context["cl"].result_list) == [revoked]
    assert admin_client.get(TOKENS, {"user__is_staff__exact": "1"}).status_code == 200


def test_added_token_is_shown_once_and_works(admin_client, client, alice, shown_secrets):
    response = admin_client.post(f"{TOKENS}add/", {"user": alice.pk, "name": "ci"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    [raw] = shown_secrets(response)

    token = ApiToken.objects.get(user=alice, name="ci")
    assert token.token_hash == hash_secret(raw)
    assert raw.startswith(token.token_prefix)
    assert api_answer(client, raw) == 200

    assert raw in admin_client.get(response.url).text
    assert raw not in admin_client.get(response.url).text
    page = admin_client.get(f"{TOKENS}{token.pk}/change/")
    assert raw not in page.text and token.token_hash not in page.text


def test_revoke_action_stops_the_tokens(admin_client, client, alice):
    token, raw = ApiToken.issue(alice, "ci")
    assert api_answer(client, raw) == 200

    response = admin_client.post(TOKENS, {"action": "revoke_tokens", "_selected_action": [token.pk]})

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_answer(client, raw) == 401


def test_people_who_are_not_staff_are_sent_to_login(client, alice):
    client.force_login(alice)
    for url in (TOKENS, "/admin/accounts/user/"):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/admin/login/")
