"""Browser sign-in: generic failures, safe `next` (else the dashboard), logout by form."""

from __future__ import annotations

import pytest

from ..helpers import csrf_token, login, signed_in_as


def test_login_with_any_case_email_then_logout(client, make_user):
    make_user(email="ada@example.com")
    response = login(client, "ADA@Example.com")
    assert response.status_code == 302
    assert signed_in_as(client) == "ada@example.com"
    page = client.get("/logout")
    out = client.post("/logout", data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert out.status_code == 200
    assert signed_in_as(client) is None


def test_failures_do_not_say_which_part_was_wrong(client, make_user):
    make_user(email="ada@example.com")
    wrong_password = login(client, "ada@example.com", password="not the password")
    unknown_email = login(client, "nobody@example.com")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert "The email or password is not correct." in wrong_password.get_data(as_text=True)
    assert "The email or password is not correct." in unknown_email.get_data(as_text=True)


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", "http:/evil.example"],
)
def test_next_never_leaves_the_server(client, make_user, next_url):
    make_user(email="ada@example.com")
    response = login(client, "ada@example.com", next_url=next_url)
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"


def test_logout_by_get_alone_does_nothing(client, make_user):
    make_user(email="ada@example.com")
    login(client, "ada@example.com")
    client.get("/logout")
    assert signed_in_as(client) == "ada@example.com"
