"""Signed-cookie sessions keep their serializer, and still follow a change of secret key."""

from __future__ import annotations

from flask import Flask, request, session
from flask.sessions import SecureCookieSession

from plugin.sessions import KeptSerializerSessionInterface


def session_app(secret_key: str) -> Flask:
    """A bare app with the kept-serializer sessions: one route sets a value, one reads it."""
    app = Flask(__name__)
    app.session_interface = KeptSerializerSessionInterface()
    app.secret_key = secret_key

    @app.post("/remember")
    def remember() -> str:
        session["who"] = "po@acme.example"
        return ""

    @app.get("/who")
    def who() -> str:
        return str(session.get("who", "nobody"))

    return app


def test_a_session_set_on_one_request_is_read_on_the_next() -> None:
    client = session_app("first-key").test_client()

    client.post("/remember")

    assert client.get("/who").text == "po@acme.example"


def test_the_serializer_is_built_once_for_the_same_keys() -> None:
    app = session_app("first-key")
    interface = app.session_interface
    assert isinstance(interface, KeptSerializerSessionInterface)

    assert interface.get_signing_serializer(app) is interface.get_signing_serializer(app)


def test_a_new_secret_key_refuses_cookies_signed_with_the_old_one() -> None:
    app = session_app("first-key")
    client = app.test_client()
    client.post("/remember")

    app.secret_key = "second-key"

    assert client.get("/who").text == "nobody"


def test_an_old_key_among_the_fallbacks_still_reads_its_cookies() -> None:
    app = session_app("first-key")
    client = app.test_client()
    client.post("/remember")

    app.config["SECRET_KEY_FALLBACKS"] = ["first-key"]
    app.secret_key = "second-key"

    assert client.get("/who").text == "po@acme.example"


def test_a_request_without_cookies_starts_a_new_empty_session() -> None:
    app = session_app("first-key")

    with app.test_request_context("/who"):
        opened = app.session_interface.open_session(app, request)

    assert isinstance(opened, SecureCookieSession)
    assert dict(opened) == {} and not opened.modified


def test_without_a_secret_key_there_is_no_session_to_open() -> None:
    app = session_app("")

    with app.test_request_context("/who"):
        assert app.session_interface.open_session(app, request) is None
