"""OAuth clients: register and look up."""

from __future__ import annotations

from sqlalchemy import select

from .. import credentials
from .db import session
from .models import Client


def create_client(
    *,
    name: str,
    redirect_uris: list[str],
    grant_types: list[str],
    scope: str,
    public: bool,
    auth_method: str = "client_secret_basic",
    require_pkce: bool = True,
    owner_id: int | None = None,
    post_logout_redirect_uris: list[str] = (),
) -> tuple[Client, str | None]:
    """Store a client; returns it with its secret in clear (None for public clients), shown once."""
    secret = None if public else credentials.new_secret("tds")
    client = Client(
        client_id=credentials.new_identifier("client"),
        secret_digest=credentials.digest(secret) if secret else None,
        name=name,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_redirect_uris),
        grant_types=list(grant_types),
        scope=scope,
        token_endpoint_auth_method="none" if public else auth_method,
        # Public clients always need PKCE; only confidential ones may relax it.
        require_pkce=True if public else require_pkce,
        owner_id=owner_id,
    )
    db = session()
    db.add(client)
    db.commit()
    return client, secret


def find_active(client_id: str) -> Client | None:
    # No client id is longer or holds NUL, which PostgreSQL refuses with an error (a 500).
    if not isinstance(client_id, str) or len(client_id) > 64 or "\x00" in client_id:
        return None
    return session().scalar(
        select(Client).where(Client.client_id == client_id, Client.is_active.is_(True))
    )
