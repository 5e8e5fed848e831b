"""Rules for registering a client, shared by the CLI and (later) the dashboard and /v1 API."""

from __future__ import annotations

from urllib.parse import urlsplit

from .oauth.scopes import unknown_scopes
from .settings import is_loopback_host

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class RegistrationError(ValueError):
    pass


def check_client_registration(*, name: str, redirect_uris: list[str], grant_types: list[str],
                              scope: str, public: bool, auth_method: str, require_pkce: bool,
                              post_logout_redirect_uris: list[str] = ()) -> None:
    if not name.strip() or len(name) > 200:
        raise RegistrationError("name: must be 1 to 200 characters")
    bad = [g for g in grant_types if g not in GRANT_TYPES]
    if bad or not grant_types:
        raise RegistrationError(f"grant type: choose from {', '.join(GRANT_TYPES)}")
    if public and "client_credentials" in grant_types:
        raise RegistrationError("grant type: a public client cannot use client_credentials")
    if public and not require_pkce:
        raise RegistrationError("PKCE: public clients always require it")
    if not public and auth_method not in AUTH_METHODS:
        raise RegistrationError(f"auth method: choose from {', '.join(AUTH_METHODS)}")
    if "authorization_code" in grant_types and not redirect_uris:
        raise RegistrationError("redirect URI: the authorization_code grant needs at least one")
    for uri in [*redirect_uris, *post_logout_redirect_uris]:
        check_redirect_uri(uri)
    unknown = unknown_scopes(scope.split())
    if unknown:
        raise RegistrationError(f"scope: unknown scope(s) {', '.join(unknown)}")


def check_redirect_uri(uri: str) -> None:
    """https anywhere; http only on a loopback host; or a private-use scheme for native apps (RFC 8252)."""
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise RegistrationError(f"redirect URI {uri!r}: must not contain a fragment (RFC 6749 §3.1.2)")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return
    if "." in parts.scheme:
        return
    raise RegistrationError(
        f"redirect URI {uri!r}: must be https, http on a loopback host, or a private-use scheme such as com.example.app:/cb"
    )

