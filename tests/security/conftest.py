"""One account, one confidential and one public client, and the calls the threat tests share."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ..conftest import REDIRECT_URI, pkce_pair
from ..helpers import get_code, login

EMAIL = "victim@example.com"
ATTACKER_EMAIL = "attacker@example.com"


@dataclass
class World:
    client_id: str  # confidential
    secret: str
    public_id: str  # public (PKCE, no secret)
    other_id: str  # a second confidential client, of another app
    other_secret: str


@pytest.fixture
def world(make_user, make_client) -> World:
    make_user(email=EMAIL)
    row, secret = make_client()
    public, _ = make_client(name="Public App", public=True)
    other, other_secret = make_client(name="Other App")
    return World(row.client_id, secret, public.client_id, other.client_id, other_secret)


def code_for(client, client_id: str, **query) -> tuple[str, str]:
    """Sign in as the victim and consent; returns (code, its PKCE verifier)."""
    login(client, EMAIL)
    verifier, challenge = pkce_pair()
    return get_code(client, client_id, challenge, **query), verifier


def redeem(client, code: str, verifier: str | None, *, client_id: str, secret: str | None = None,
           redirect_uri: str = REDIRECT_URI):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        data["code_verifier"] = verifier
    if secret is None:
        return client.post("/oauth/token", data={**data, "client_id": client_id})
    return client.post("/oauth/token", data=data, auth=(client_id, secret))
