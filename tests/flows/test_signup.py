"""Sign-up: a free account with an Argon2id hash, signed in at once; every bad input refused with
nothing stored; one account per email, even for concurrent sign-ups; CSRF required."""

from __future__ import annotations

import html
import re
import threading
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import create_engine, select

from authserver.passwords import verify_password
from authserver.storage.models import User
from authserver.web.signup import EMAIL_TAKEN

from ..conftest import pkce_pair
from ..helpers import authorize_query, authorize_url, csrf_token, signed_in_as
from .stored_state import unchanged

PASSWORD = "plum tractor velvet 1987"
VALID = {"email": "grace@example.com", "name": "Grace Hopper", "password": PASSWORD, "confirm": PASSWORD}


def sign_up(client, path="/signup", **fields):
    page = client.get(path)
    assert page.status_code == 200
    data = {**VALID, **fields}
    return client.post(path, data={**{k: v for k, v in data.items() if v is not None},
                                   "csrf_token": csrf_token(page.get_data(as_text=True))})


def stored_users(database_url) -> list[User]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(User.email, User.name, User.plan, User.password_hash)))
    finally:
        engine.dispose()


def test_sign_up_creates_a_free_account_and_signs_it_in(client, database_url):
    response = sign_up(client, email="  Grace@Example.COM ", name="  Grace Hopper  ")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"

    [(email, name, plan, password_hash)] = stored_users(database_url)
    assert (email, name, plan) == ("grace@example.com", "Grace Hopper", "free")
    assert password_hash.startswith("$argon2id$")
    assert verify_password(password_hash, PASSWORD)
    assert "your account is ready" in client.get("/dashboard").get_data(as_text=True)
    assert signed_in_as(client) == "grace@example.com"


def test_sign_up_goes_on_to_the_authorization_request_that_sent_the_user(client, make_client):
    row, _ = make_client()
    _, challenge = pkce_pair()
    next_url = authorize_url(authorize_query(row.client_id, challenge))
    response = sign_up(client, path=f"/signup?{urlencode({'next': next_url})}")
    assert response.status_code == 302
    assert response.headers["Location"] == next_url


def test_the_new_account_can_sign_in_with_its_password(app, client):
    sign_up(client)
    other_browser = app.test_client()
    page = other_browser.get("/login")
    response = other_browser.post("/login", data={"email": VALID["email"], "password": PASSWORD,
                                                  "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 302
    assert signed_in_as(other_browser) == VALID["email"]


# field changed, a word of the message shown
BAD_INPUT = [
    ({"email": None}, "Enter your email address."),
    ({"email": "   "}, "Enter your email address."),
    ({"email": "grace"}, "Enter an email address like"),
    ({"email": "grace@localhost"}, "Enter an email address like"),
    ({"email": "grace hopper@example.com"}, "Enter an email address like"),
    ({"email": "grace@example.com\x00"}, "Enter an email address like"),
    ({"email": "g" * 64 + "@" + "e" * 252 + ".com"}, "Use at most 320 characters."),
    ({"name": None}, "Enter your name."),
    ({"name": "    "}, "Enter your name."),
    ({"name": "n" * 201}, "Use at most 200 characters."),
    ({"name": "Grace\x00Hopper"}, "Use letters, digits, spaces and punctuation only."),
    ({"password": None, "confirm": None}, "Choose a password."),
    ({"password": "short pass1", "confirm": "short pass1"}, "Use at least 12 characters."),
    ({"password": "p" * 1025, "confirm": "p" * 1025}, "Use at most 1024 characters."),
    ({"password": "GRACE@example.com", "confirm": "GRACE@example.com"}, "cannot be your email address"),
    ({"password": "Password1234", "confirm": "Password1234"}, "too common"),
    ({"password": "correct horse battery staple", "confirm": "correct horse battery staple"}, "too common"),
    ({"confirm": None}, "Type the password again."),
    ({"confirm": PASSWORD + "!"}, "The two passwords are not the same."),
]


@pytest.mark.parametrize(("fields", "message"), BAD_INPUT, ids=[f"{sorted(f)}-{m[:24]}" for f, m in BAD_INPUT])
def test_bad_input_is_refused_and_nothing_is_stored(client, database_url, fields, message):
    with unchanged(database_url):
        response = sign_up(client, **fields)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'aria-invalid="true"' in html
    assert signed_in_as(client) is None


def test_the_password_boundaries_are_accepted(app, database_url):
    for number, password in enumerate(["x7!kq" * 2 + "zz", "k" * 1024]):
        browser = app.test_client()
        response = sign_up(browser, email=f"edge{number}@example.com", password=password, confirm=password)
        assert response.status_code == 302, response.get_data(as_text=True)
    assert len(stored_users(database_url)) == 2


def test_hostile_html_in_the_name_is_stored_as_typed_and_shown_escaped(client, database_url):
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    assert sign_up(client, name=name).status_code == 302
    assert stored_users(database_url)[0].name == name
    html = client.get("/dashboard").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert" not in html and "<img src=x" not in html


def test_a_taken_email_in_any_case_is_refused_and_the_account_is_untouched(client, make_user, database_url):
    make_user(email="grace@example.com")
    with unchanged(database_url):
        response = sign_up(client, email="GRACE@example.com")
    assert response.status_code == 409
    assert EMAIL_TAKEN in response.get_data(as_text=True)
    assert signed_in_as(client) is None


def test_concurrent_sign_ups_for_one_email_create_one_account(app, database_url):
    browsers = [app.test_client() for _ in range(4)]
    tokens = [csrf_token(browser.get("/signup").get_data(as_text=True)) for browser in browsers]
    barrier = threading.Barrier(len(browsers))
    statuses: list[int] = []

    def submit(browser, token):
        barrier.wait()
        response = browser.post("/signup", data={**VALID, "csrf_token": token})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=submit, args=pair) for pair in zip(browsers, tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [302, 409, 409, 409]
    assert len(stored_users(database_url)) == 1


def test_sign_up_without_the_csrf_token_is_refused(client, database_url):
    client.get("/signup")
    with unchanged(database_url):
        response = client.post("/signup", data=VALID)
    assert response.status_code == 400
    assert signed_in_as(client) is None


def test_sign_up_with_another_browsers_csrf_token_is_refused(app, client, database_url):
    attacker = app.test_client()
    forged = csrf_token(attacker.get("/signup").get_data(as_text=True))
    client.get("/signup")
    with unchanged(database_url):
        response = client.post("/signup", data={**VALID, "csrf_token": forged})
    assert response.status_code == 400
    assert signed_in_as(client) is None


def test_sign_in_and_sign_up_link_to_each_other(client):
    assert 'href="/signup"' in client.get("/login").get_data(as_text=True)
    assert 'href="/login"' in client.get("/signup").get_data(as_text=True)


def test_the_links_carry_an_authorization_request_along(client, make_client):
    row, _ = make_client()
    _, challenge = pkce_pair()
    next_url = authorize_url(authorize_query(row.client_id, challenge))
    login_page = client.get(f"/login?{urlencode({'next': next_url})}").get_data(as_text=True)
    [link] = re.findall(r'href="(/signup[^"]*)"', login_page)
    assert parse_qs(urlsplit(html.unescape(link)).query) == {"next": [next_url]}
