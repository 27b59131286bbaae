"""Error pages keep the site around them: a way back, the user's own menu, and no server details."""

from django.test import RequestFactory

from iotflow.errors import server_error
from tests.conftest import session_client


def test_an_unknown_address_answers_a_page_not_found_with_a_way_back(client, db):
    answer = client.get("/no/such/page")
    page = answer.content.decode()
    assert answer.status_code == 404
    assert "<h1>Page not found</h1>" in page and "<code>/no/such/page</code>" in page
    assert 'class="site-header"' in page and 'href="/"' in page


def test_another_users_device_is_not_found_and_the_page_keeps_the_users_menu(alice, bob, make_device):
    bobs = make_device(bob, "Bob's boiler")
    answer = session_client(alice).get(f"/devices/{bobs.pk}/")
    page = answer.content.decode()
    assert answer.status_code == 404 and "<h1>Page not found</h1>" in page
    assert "user-menu__name" in page and ">alice<" in page
    assert "Bob's boiler" not in page and "bob" not in page


def test_an_admin_action_a_staff_user_may_not_take_answers_not_allowed(staff, make_device, alice):
    device = make_device(alice)
    answer = session_client(staff).get(f"/admin/devices/device/{device.pk}/rotate-key/")
    page = answer.content.decode()
    assert answer.status_code == 403
    assert "<h1>Not allowed</h1>" in page and "user-menu__name" in page


def test_a_server_error_answers_a_plain_page_without_details(db):
    answer = server_error(RequestFactory().get("/devices/"))
    page = answer.content.decode()
    assert answer.status_code == 500
    assert "<h1>Something went wrong</h1>" in page and "Traceback" not in page


def test_an_unknown_api_address_answers_json_as_the_api_does(client, db):
    answer = client.get("/api/v1/no-such-resource")
    assert answer.status_code == 404
    assert answer["Content-Type"] == "application/json" and answer.json() == {"detail": "Not found."}
