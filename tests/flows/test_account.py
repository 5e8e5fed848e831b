"""The dashboard: sign-in required, the overview (account, plan, the plan's limits), and the
password change, which keeps this session and ends every other one."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine, select

from authserver.passwords import verify_password
from authserver.storage.models import RefreshToken, User
from authserver.storage.users import set_plan

from ..conftest import PASSWORD as DEFAULT_PASSWORD
from ..helpers import csrf_token, login, signed_in_as
from .stored_state import unchanged
from .tokens import user_tokens

PASSWORD = "amber falcon river 2041"
NEW_PASSWORD = "seven quiet harbour lamps"


def stored(database_url, *columns):
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(*columns)))
    finally:
        engine.dispose()


def password_hash(database_url, email: str) -> str:
    return dict(stored(database_url, User.email, User.password_hash))[email]


def change_password(client, current=PASSWORD, new=NEW_PASSWORD, confirm=None):
    page = client.get("/dashboard/account")
    assert page.status_code == 200
    return client.post("/dashboard/account", data={
        "current_password": current, "password": new, "confirm": new if confirm is None else confirm,
        "csrf_token": csrf_token(page.get_data(as_text=True)),
    })


# -- sign-in required -------------------------------------------------------------

@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/account"])
def test_the_dashboard_requires_sign_in_and_comes_back_after_it(client, make_user, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next={path.replace('/', '%2F')}"
    make_user(email="ada@example.com", password=PASSWORD)
    assert login(client, "ada@example.com", password=PASSWORD, next_url=path).headers["Location"] == path
    assert client.get(path).status_code == 200


def test_the_password_form_requires_sign_in(client, database_url):
    with unchanged(database_url):
        response = client.post("/dashboard/account", data={"current_password": PASSWORD, "password": NEW_PASSWORD,
                                                           "confirm": NEW_PASSWORD})
    assert response.status_code in (302, 400)  # no session: no CSRF token either


def test_after_sign_in_and_at_the_root_a_signed_in_user_lands_on_the_dashboard(client, make_user):
    make_user(email="ada@example.com", password=PASSWORD)
    assert client.get("/").headers["Location"] == "/login"
    assert login(client, "ada@example.com", password=PASSWORD).headers["Location"] == "/dashboard"
    assert client.get("/").headers["Location"] == "/dashboard"


def test_sign_out_from_the_top_bar(client, make_user):
    make_user(email="ada@example.com", password=PASSWORD)
    login(client, "ada@example.com", password=PASSWORD)
    page = client.get("/dashboard").get_data(as_text=True)
    assert re.search(r'<form method="post" action="/logout">', page)
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 200
    assert signed_in_as(client) is None


# -- overview ---------------------------------------------------------------------

def overview(client) -> str:
    page = client.get("/dashboard")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def stat_values(html: str) -> list[str]:
    return re.findall(r'<p class="stat-value">([^<]*)</p>', html)


@pytest.mark.parametrize(("plan", "label", "values"), [
    ("free", "Free", ["1,000", "50 per minute"]),
    ("pro", "Pro", ["10,000", "500 per minute"]),
    ("enterprise", "Enterprise", ["Unlimited", "Unlimited"]),
])
def test_the_overview_shows_the_account_and_its_plans_limits(client, make_user, plan, label, values):
    user = make_user(email="ada@example.com", name="Ada Lovelace", plan=plan, password=PASSWORD)
    login(client, "ada@example.com", password=PASSWORD)
    html = overview(client)
    assert "Ada Lovelace" in html and "ada@example.com" in html and user.public_id in html
    assert f'<span class="badge badge-{plan}">{label}</span>' in html
    assert stat_values(html) == values
    assert '<a href="/dashboard" class="active" aria-current="page">Overview</a>' in html


def test_the_overview_shows_an_enterprise_accounts_custom_limits(app, client, make_user):
    make_user(email="ada@example.com", plan="enterprise", password=PASSWORD)
    with app.app_context():
        set_plan("ada@example.com", "enterprise", per_hour=50_000, per_minute=2_000)
    login(client, "ada@example.com", password=PASSWORD)
    assert stat_values(overview(client)) == ["50,000", "2,000 per minute"]


def test_the_navigation_links_every_dashboard_page(client, make_user):
    make_user(email="ada@example.com", password=PASSWORD)
    login(client, "ada@example.com", password=PASSWORD)
    links = re.findall(r'<nav class="sidenav".*?</nav>', overview(client), re.S)[0]
    assert re.findall(r'href="([^"]+)"', links) == [
        "/dashboard", "/dashboard/api-keys", "/dashboard/apps", "/dashboard/authorized-apps",
        "/dashboard/usage", "/dashboard/account",
    ]


# -- password change --------------------------------------------------------------

def test_changing_the_password_stores_a_new_hash_and_keeps_this_session(app, client, make_user, database_url):
    make_user(email="ada@example.com", password=PASSWORD)
    login(client, "ada@example.com", password=PASSWORD)
    before = password_hash(database_url, "ada@example.com")

    response = change_password(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/account"
    assert "Your password was changed." in client.get("/dashboard/account").get_data(as_text=True)

    after = password_hash(database_url, "ada@example.com")
    assert after != before and after.startswith("$argon2id$")
    assert verify_password(after, NEW_PASSWORD) and not verify_password(after, PASSWORD)
    assert signed_in_as(client) == "ada@example.com"
    assert login(app.test_client(), "ada@example.com", password=PASSWORD).status_code == 401
    assert login(app.test_client(), "ada@example.com", password=NEW_PASSWORD).status_code == 302


def test_changing_the_password_signs_out_every_other_session(app, client, make_user):
    make_user(email="ada@example.com", password=PASSWORD)
    other_browser = app.test_client()
    login(other_browser, "ada@example.com", password=PASSWORD)
    login(client, "ada@example.com", password=PASSWORD)
    assert signed_in_as(other_browser) == "ada@example.com"

    assert change_password(client).status_code == 302
    assert signed_in_as(client) == "ada@example.com"
    assert signed_in_as(other_browser) is None


def test_changing_the_password_revokes_the_other_sessions_bound_refresh_tokens(app, client, make_user, make_client,
                                                                                database_url):
    make_user(email="ada@example.com")  # user_tokens signs in with the default password
    row, secret = make_client(scope="openid offline_access")
    other_browser = app.test_client()
    elsewhere = user_tokens(other_browser, row.client_id, secret, "ada@example.com", scope="openid")
    offline = user_tokens(other_browser, row.client_id, secret, "ada@example.com", scope="openid offline_access",
                          prompt="consent")
    here = user_tokens(client, row.client_id, secret, "ada@example.com", scope="openid", prompt="consent")

    assert change_password(client, current=DEFAULT_PASSWORD).status_code == 302

    def refresh_works(body) -> bool:
        response = client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                     "refresh_token": body["refresh_token"]},
                               auth=(row.client_id, secret))
        return response.status_code == 200

    assert not refresh_works(elsewhere)  # bound to a session the change ended
    assert refresh_works(offline)  # offline_access outlives sessions by design
    assert refresh_works(here)  # this session goes on
    revoked = [r for r in stored(database_url, RefreshToken.scope, RefreshToken.revoked_at) if r.revoked_at]
    assert [r.scope for r in revoked] == ["openid"] * len(revoked) and revoked


@pytest.mark.parametrize(("fields", "message"), [
    ({"current": "not my password"}, "This is not your current password."),
    ({"current": ""}, "Enter your current password."),
    ({"new": "too short 1"}, "Use at least 12 characters."),
    ({"new": "ada@example.com"}, "cannot be your email address"),
    ({"new": "qwerty123456"}, "too common"),
    ({"new": PASSWORD}, "Choose a password different from your current one."),
    ({"confirm": NEW_PASSWORD + " "}, "The two passwords are not the same."),
], ids=["wrong-current", "no-current", "short", "email", "common", "same", "mismatch"])
def test_a_refused_change_says_why_and_changes_nothing(client, make_user, database_url, fields, message):
    make_user(email="ada@example.com", password=PASSWORD)
    login(client, "ada@example.com", password=PASSWORD)
    with unchanged(database_url):
        response = change_password(client, **fields)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert "The password was not changed." in html
    assert signed_in_as(client) == "ada@example.com"


def test_a_password_change_without_the_csrf_token_is_refused(client, make_user, database_url):
    make_user(email="ada@example.com", password=PASSWORD)
    login(client, "ada@example.com", password=PASSWORD)
    with unchanged(database_url):
        response = client.post("/dashboard/account", data={"current_password": PASSWORD, "password": NEW_PASSWORD,
                                                           "confirm": NEW_PASSWORD})
    assert response.status_code == 400
