"""Getting tokens in-process for flow tests."""

from __future__ import annotations

from ..conftest import REDIRECT_URI, pkce_pair
from ..helpers import get_code, login


def user_tokens(client, client_id: str, secret: str | None, email: str, scope="openid read:users", **query) -> dict:
    """Log in, consent and exchange the code; returns the token response body."""
    login(client, email)
    verifier, challenge = pkce_pair()
    code = get_code(client, client_id, challenge, scope=scope, **query)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    if secret is None:
        response = client.post("/oauth/token", data={**data, "client_id": client_id})
    else:
        response = client.post("/oauth/token", data=data, auth=(client_id, secret))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def refresh(client, client_id: str, secret: str | None, refresh_token: str, **extra):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    if secret is None:
        return client.post("/oauth/token", data={**data, "client_id": client_id})
    return client.post("/oauth/token", data=data, auth=(client_id, secret))
