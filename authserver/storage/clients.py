"""OAuth clients: register and look up; the apps an account owns (dashboard, /v1/apps)."""

from __future__ import annotations

import time

from flask import Flask, current_app
from sqlalchemy import func, select

from .. import audit, credentials
from . import access_tokens
from .client_cache import ClientCache
from .db import separate_session, session
from .models import AuthorizationCode, Client, RefreshToken, User

MAX_APPS_PER_ACCOUNT = 25
CACHE_KEY = "authserver.client_cache"


class TooManyApps(ValueError):
    """The account has MAX_APPS_PER_ACCOUNT apps; the message may be shown as it is."""


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
    audit.record("client_created", account=_public_id(owner_id), client=client.client_id,
                 secret_issued=secret is not None)
    return client, secret


def init_cache(app: Flask, ttl: int) -> None:
    app.extensions[CACHE_KEY] = ClientCache(ttl)


def _cache() -> ClientCache:
    return current_app.extensions[CACHE_KEY]


def forget_cached(client_id: str) -> None:
    """This worker reads the client again at its next use (after a change made here)."""
    _cache().forget(client_id)


def find_active(client_id: str) -> Client | None:
    """The active client, from this worker's cache when it is fresh (see client_cache.py).
    The row comes detached from any session: read it, never change it."""
    # No client id is longer or holds NUL, which PostgreSQL refuses with an error (a 500).
    if not isinstance(client_id, str) or len(client_id) > 64 or "\x00" in client_id:
        return None
    cache = _cache()
    client = cache.get(client_id)
    if client is None:
        # Its own session: the row is shared by this worker's threads, so it must belong to none of
        # them, and the request's session keeps any instance of this client it already holds.
        with separate_session() as db:
            client = db.scalar(select(Client).where(Client.client_id == client_id, Client.is_active.is_(True)))
        if client is not None:
            cache.put(client_id, client)
    return client


def create_owned(owner_id: int, registration: dict) -> tuple[Client, str | None]:
    """`create_client` for an account, refused with TooManyApps when it has the most apps it may.
    The owner's row is locked while counting (PostgreSQL; SQLite has one writer at a time), so
    concurrent registrations cannot pass the limit together."""
    db = session()
    db.execute(select(User.id).where(User.id == owner_id).with_for_update())
    if count_owned(owner_id) >= MAX_APPS_PER_ACCOUNT:
        db.rollback()
        raise TooManyApps(f"An account may have at most {MAX_APPS_PER_ACCOUNT} apps: delete one first.")
    return create_client(**registration, owner_id=owner_id)


def count_owned(owner_id: int) -> int:
    return session().scalar(select(func.count()).select_from(Client).where(Client.owner_id == owner_id))


def list_owned(owner_id: int) -> list[Client]:
    """The account's apps, newest first."""
    return list(session().scalars(
        select(Client).where(Client.owner_id == owner_id).order_by(Client.created_at.desc(), Client.id.desc())
    ))


def find_owned(owner_id: int, client_id: str) -> Client | None:
    """The app, if this account owns it: someone else's and unknown ones look the same (None)."""
    if not isinstance(client_id, str) or len(client_id) > 64 or "\x00" in client_id:
        return None
    return session().scalar(select(Client).where(Client.client_id == client_id, Client.owner_id == owner_id))


def rotate_secret(client: Client) -> str:
    """A new secret for a confidential client, shown once; the old one stops working at once."""
    secret = credentials.new_secret("tds")
    client.secret_digest = credentials.digest(secret)
    session().commit()
    forget_cached(client.client_id)
    audit.record("client_secret_rotated", account=_public_id(client.owner_id), client=client.client_id)
    return secret


def delete_owned(client: Client) -> None:
    """Delete the app with what it holds (consents, codes, refresh tokens: the foreign keys
    cascade), after putting the unexpired access tokens it was issued with a code or a refresh
    token on the deny list, so that nothing it was given keeps working here (resource services
    that verify JWTs locally accept them until they expire, as after any revocation)."""
    db = session()
    now = int(time.time())
    for issued in (RefreshToken, AuthorizationCode):
        for jti, expires_at in db.execute(
            select(issued.access_token_jti, issued.access_token_expires_at)
            .where(issued.client_id == client.id, issued.access_token_expires_at > now)
        ):
            access_tokens.deny(jti, expires_at)
    owner = _public_id(client.owner_id)
    db.delete(client)
    db.commit()
    forget_cached(client.client_id)
    audit.record("client_deleted", account=owner, client=client.client_id)


def _public_id(user_id: int | None) -> str | None:
    """The account's public id (for the audit log); from the session's identity map when the
    request already loaded the account."""
    return None if user_id is None else session().get(User, user_id).public_id
