"""Pages that name no icon of their own (the admin, the API docs) still get IoTFlow's."""

from django.contrib.staticfiles import finders


def test_favicon_ico_redirects_to_the_icon_every_page_names(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 302
    assert answer["Location"].endswith("/img/favicon.svg")
    assert finders.find("img/favicon.svg"), "the icon the redirect names is a static file"
    page = client.get("/accounts/login/").content.decode()
    assert answer["Location"] in page, "the same icon as the pages' own link"
