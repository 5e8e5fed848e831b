"""Using an app registered through `/v1/apps` or `/dashboard/apps` as its developer would: the
authorization-code flow in the world's signed-in browser, the token endpoint, introspection by a
resource service."""

from __future__ import annotations

from sqlalchemy import delete

from authserver.storage.models import Client

from ..conftest import REDIRECT_URI, pkce_pair
from ..helpers import get_code
from .token_world import Registered, World, post


def forget_owned_apps(w: World) -> None:
    w.execute(delete(Client).where(Client.owner_id == w.user_id))


def token_request(w: World, client_id: str, secret: str | None, params: dict):
    """At the token endpoint: a confidential app with HTTP Basic, a public one with its client_id."""
    if secret is None:
        return w.api.post("/oauth/token", data={**params, "client_id": client_id})
    return w.api.post("/oauth/token", data=params, auth=(client_id, secret))


def code_flow_tokens(w: World, client_id: str, secret: str | None, scope: str) -> dict:
    """The user consents in the browser and the app redeems the code (PKCE S256)."""
    verifier, challenge = pkce_pair()
    code = get_code(w.browser, client_id, challenge, scope=scope)
    response = token_request(w, client_id, secret, {"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def client_credentials(w: World, client_id: str, secret: str):
    return token_request(w, client_id, secret, {"grant_type": "client_credentials"})


def active(w: World, resource: Registered, token: str) -> bool:
    """Whether introspection by the resource service says the token is active."""
    response = post(w.api, "/oauth/introspect", resource, {"token": token})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["active"]
