"""Speaking to the server the way a browser and a client app do, in-process (Flask test client)."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlencode, urlsplit

from .conftest import PASSWORD, REDIRECT_URI

CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
ACCOUNT_EMAIL = re.compile(r'class="account-email"[^>]*>([^<]+)<')


def csrf_token(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def signed_in_as(client) -> str | None:
    """The email this browser is signed in as, from the dashboard's top bar; None when it is not
    signed in (the dashboard then sends it to the sign-in page)."""
    page = client.get("/dashboard")
    if page.status_code == 302:
        return None
    assert page.status_code == 200, page.status_code
    match = ACCOUNT_EMAIL.search(page.get_data(as_text=True))
    assert match, "the dashboard shows no account"
    return html.unescape(match.group(1))


def login(client, email: str, password: str = PASSWORD, next_url: str | None = None):
    path = "/login" + (f"?{urlencode({'next': next_url})}" if next_url else "")
    page = client.get(path)
    return client.post(path, data={"email": email, "password": password, "csrf_token": csrf_token(page.get_data(as_text=True))})


def authorize_query(client_id: str, challenge: str | None, *, scope="openid read:users", state="xyz",
                    redirect_uri=REDIRECT_URI, method="S256", **extra) -> dict:
    query = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": scope, "state": state}
    if challenge is not None:
        query.update(code_challenge=challenge, code_challenge_method=method)
    query.update(extra)
    return {k: v for k, v in query.items() if v is not None}


def authorize_url(query: dict) -> str:
    return "/oauth/authorize?" + urlencode(query)


def decide(client, url: str, decision: str):
    """Submit the consent form shown at `url`."""
    page = client.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(url, data={"decision": decision, "csrf_token": csrf_token(page.get_data(as_text=True))})


def redirect_params(response) -> dict:
    location = response.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def redirect_target(response) -> str:
    parts = urlsplit(response.headers["Location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def get_code(client, client_id: str, challenge: str, **query) -> str:
    """Log-in is the caller's; this consents (Allow) and returns the code."""
    response = decide(client, authorize_url(authorize_query(client_id, challenge, **query)), "allow")
    assert response.status_code == 302, response.get_data(as_text=True)
    return redirect_params(response)["code"]


def assert_envelope(response, status: int, code: str) -> dict:
    """DESIGN.md, Errors: exactly {"error": {"code", "message", "status"}}, JSON, not cached."""
    body = response.get_json(silent=True)
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    assert body == {"error": {"code": code, "message": body["error"]["message"], "status": status}}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"].strip(), body
    assert response.headers["Cache-Control"] == "no-store"
    return body
