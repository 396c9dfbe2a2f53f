"""The details page shows one site's item: links name the site, and nothing is guessed."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from support.rules_admin import OTHER_SITE, SITE, epic, seed

ACME_LINK = "/items/jira/KAN-1?site=https%3A%2F%2Facme.atlassian.net"
GLOBEX_LINK = "/items/jira/KAN-1?site=https%3A%2F%2Fglobex.atlassian.net"


def test_a_key_on_one_site_opens_with_or_without_the_site(app: Flask, client: FlaskClient) -> None:
    seed(app, [epic("KAN-1", metric=None)], site=SITE)

    for link in ("/items/jira/KAN-1", ACME_LINK):
        page = client.get(link)
        assert page.status_code == 200, link
        assert "No success metric found." in page.get_data(as_text=True)


def test_the_same_key_on_two_sites_opens_each_sites_own_item(
    app: Flask, client: FlaskClient
) -> None:
    seed(app, [epic("KAN-1", metric=None)], site=SITE)
    seed(app, [epic("KAN-1", problem=None, site=OTHER_SITE)], site=OTHER_SITE)

    acme = client.get(ACME_LINK).get_data(as_text=True)
    globex = client.get(GLOBEX_LINK).get_data(as_text=True)

    assert "No success metric found." in acme and "No customer problem found." not in acme
    assert "No customer problem found." in globex and "No success metric found." not in globex


def test_a_bare_link_to_a_key_on_two_sites_is_refused_rather_than_guessed(
    app: Flask, client: FlaskClient
) -> None:
    seed(app, [epic("KAN-1", metric=None)], site=SITE)
    seed(app, [epic("KAN-1", problem=None, site=OTHER_SITE)], site=OTHER_SITE)

    page = client.get("/items/jira/KAN-1")

    assert page.status_code == 404
    text = page.get_data(as_text=True)
    assert "Several sites have jira item KAN-1" in text
    assert "No success metric found." not in text and "No customer problem found." not in text


def test_a_site_link_matches_with_or_without_a_trailing_slash(
    app: Flask, client: FlaskClient
) -> None:
    seed(app, [epic("KAN-1", metric=None)], site=SITE)

    page = client.get("/items/jira/KAN-1", query_string={"site": f"{SITE}/"})

    assert page.status_code == 200


def test_a_site_that_lacks_the_item_finds_nothing(app: Flask, client: FlaskClient) -> None:
    seed(app, [epic("KAN-1", metric=None)], site=SITE)

    assert client.get(GLOBEX_LINK).status_code == 404
    assert client.get("/items/jira/KAN-1?site=https%3A%2F%2Funknown.example").status_code == 404


def test_the_home_page_links_each_item_with_its_site(app: Flask, client: FlaskClient) -> None:
    seed(app, [epic("KAN-1", metric=None)], site=SITE)
    seed(app, [epic("KAN-1", problem=None, site=OTHER_SITE)], site=OTHER_SITE)

    home = client.get("/").get_data(as_text=True)

    assert f'href="{ACME_LINK}"' in home and f'href="{GLOBEX_LINK}"' in home
