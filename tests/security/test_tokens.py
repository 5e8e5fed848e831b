"""RFC 9700 §4.14 (refresh token protection) and §4.15 (client impersonating resource owner)."""

from __future__ import annotations

from dataclasses import fields

import jwt
import pytest

from authserver.app import create_app
from authserver.settings import Settings

from ..flows.stored_state import unchanged
from ..flows.tokens import refresh, user_tokens
from .conftest import EMAIL

GRACE_SETTING = "refresh_grace_seconds"


@pytest.fixture
def without_grace(settings_overrides):
    """A browser on an app with no grace window for a retried refresh token
    (AUTHSERVER_REFRESH_GRACE_SECONDS=0) where the setting exists, so that presenting a rotated
    token again is reuse at once. Where it does not exist there is no grace window to turn off
    (and load_settings refuses unknown names)."""
    no_grace = {GRACE_SETTING: 0} if GRACE_SETTING in {field.name for field in fields(Settings)} else {}
    return create_app({**settings_overrides, **no_grace}).test_client()


def active(client, world, token: str) -> bool:
    response = client.post("/oauth/introspect", data={"token": token}, auth=(world.client_id, world.secret))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["active"]


def refused_as_invalid_grant(response) -> None:
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_grant"


def test_refresh_tokens_rotate(client, world):
    """RFC 9700 §4.14.2: a refresh token is single-use; each refresh returns a new one."""
    first = user_tokens(client, world.public_id, None, EMAIL)
    second = refresh(client, world.public_id, None, first["refresh_token"]).get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]


def test_a_replayed_refresh_token_revokes_the_family(without_grace, world):
    """RFC 9700 §4.14.2: a rotated refresh token presented again means it leaked: the request is
    refused and the whole grant is revoked, the legitimate holder's newest tokens included (no
    grace window: see `without_grace`)."""
    client = without_grace
    first = user_tokens(client, world.client_id, world.secret, EMAIL)
    second = refresh(client, world.client_id, world.secret, first["refresh_token"]).get_json()
    refused_as_invalid_grant(refresh(client, world.client_id, world.secret, first["refresh_token"]))
    refused_as_invalid_grant(refresh(client, world.client_id, world.secret, second["refresh_token"]))
    assert not active(client, world, second["access_token"])
    assert not active(client, world, second["refresh_token"])


def test_reuse_after_the_successor_was_rotated_revokes_the_family(client, world):
    """RFC 9700 §4.14.2, whatever grace window is configured (this runs on the default settings):
    token 1 rotated to token 2, token 2 rotated to token 3, then token 1 presented again. A grace
    window serves a client that lost the response to a refresh and retries it; this client
    evidently received token 2 and used it, so token 1 can now only be in someone else's hands:
    reuse under any grace policy, and the family (token 3 and its access token) is revoked."""
    first = user_tokens(client, world.public_id, None, EMAIL)
    second = refresh(client, world.public_id, None, first["refresh_token"]).get_json()
    third = refresh(client, world.public_id, None, second["refresh_token"]).get_json()
    refused_as_invalid_grant(refresh(client, world.public_id, None, first["refresh_token"]))
    refused_as_invalid_grant(refresh(client, world.public_id, None, third["refresh_token"]))
    assert not active(client, world, third["access_token"])


def test_a_refresh_token_is_refused_to_another_client(client, world, database_url):
    """RFC 9700 §4.14.2: a confidential client's refresh token is bound to it by client
    authentication: another client, with valid credentials of its own, is refused, nothing is
    revoked, and the holder can still use it."""
    tokens = user_tokens(client, world.client_id, world.secret, EMAIL)
    with unchanged(database_url):
        refused_as_invalid_grant(refresh(client, world.other_id, world.other_secret, tokens["refresh_token"]))
        refused_as_invalid_grant(refresh(client, world.public_id, None, tokens["refresh_token"]))
    assert refresh(client, world.client_id, world.secret, tokens["refresh_token"]).status_code == 200


def test_a_refresh_cannot_widen_the_grant(client, world, database_url):
    """RFC 9700 §4.14.2 (RFC 6749 §6): a refresh may narrow the scope, never add to it."""
    tokens = user_tokens(client, world.client_id, world.secret, EMAIL, scope="openid read:users")
    with unchanged(database_url):
        response = refresh(client, world.client_id, world.secret, tokens["refresh_token"],
                           scope="openid read:users write:data")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_scope", response.get_json()


def test_a_client_cannot_pass_for_a_resource_owner(client, world):
    """RFC 9700 §4.15: a client_credentials token's `sub` is the client's own id, which the server
    generates (`client_…`) and which can never equal an account's (`user_…`): a resource service
    cannot mistake a client acting for itself for a user."""
    user_token = user_tokens(client, world.client_id, world.secret, EMAIL)["access_token"]
    client_token = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "read:users"},
                               auth=(world.client_id, world.secret)).get_json()["access_token"]
    user_claims = jwt.decode(user_token, options={"verify_signature": False})
    client_claims = jwt.decode(client_token, options={"verify_signature": False})
    assert client_claims["sub"] == client_claims["client_id"] == world.client_id
    assert client_claims["sub"].startswith("client_") and user_claims["sub"].startswith("user_")
    assert "plan" not in client_claims and "username" not in client_claims
