"""Rules for registering a client: `check_client_registration` for the CLI (an operator), and
`account_app_registration` for what any account registers in the dashboard and at /v1/apps."""

from __future__ import annotations

from urllib.parse import urlsplit

from .oauth.scopes import unknown_scopes
from .settings import is_loopback_host

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
MAX_URI_LENGTH = 2000
MAX_URIS = 10  # of each kind, for an account's app
WEB_SCHEMES = ("http", "https")


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
    if len(uri) > MAX_URI_LENGTH:
        raise RegistrationError(f"redirect URI: must be at most {MAX_URI_LENGTH} characters")
    if any(character.isspace() or not character.isprintable() for character in uri):
        raise RegistrationError(f"redirect URI {uri!r}: must not contain spaces or control characters")
    try:
        parts = urlsplit(uri)
    except ValueError:  # such as an unclosed IPv6 bracket
        raise RegistrationError(f"redirect URI {uri!r}: is not a valid URI") from None
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


def account_app_registration(*, name: str, redirect_uris: list[str], public: bool, scopes: list[str],
                             grant_types: list[str], post_logout_redirect_uris: list[str] = ()) -> dict:
    """The checked registration (create_client's arguments) of an app an account registers.

    Anyone with an account registers here, and the app's name is shown to other people on the
    consent page, so the CLI's rules are tightened: a printable name without `<` or `>`, at least
    one scope, at most MAX_URIS URIs of each kind, PKCE always, and a private-use scheme
    (`com.example.app:/cb`) only for a public app: such schemes are for native apps (RFC 8252
    §7.1), which cannot keep a secret (§8.5) and which any other app on the device may
    impersonate by claiming the scheme, so only PKCE, which public clients always use, protects
    their codes. A confidential app is a web server: https, or http on a loopback host."""
    name = name.strip()
    if any(not character.isprintable() for character in name):
        raise RegistrationError("name: use letters, digits, spaces and punctuation only")
    if "<" in name or ">" in name:
        raise RegistrationError("name: must not contain < or >")
    if not scopes:
        raise RegistrationError("scope: choose at least one")
    if len(redirect_uris) > MAX_URIS or len(post_logout_redirect_uris) > MAX_URIS:
        raise RegistrationError(f"redirect URI: at most {MAX_URIS} of each kind")
    registration = dict(
        name=name,
        redirect_uris=list(dict.fromkeys(redirect_uris)),
        post_logout_redirect_uris=list(dict.fromkeys(post_logout_redirect_uris)),
        grant_types=list(dict.fromkeys(grant_types)),
        scope=" ".join(dict.fromkeys(scopes)),
        public=public,
        auth_method="client_secret_basic",
        require_pkce=True,
    )
    check_client_registration(**registration)
    if not public:
        for uri in [*redirect_uris, *post_logout_redirect_uris]:
            if urlsplit(uri).scheme not in WEB_SCHEMES:
                raise RegistrationError(f"redirect URI {uri!r}: a private-use scheme is for native apps, which are "
                                        "public; a confidential app uses https (or http on a loopback host)")
    return registration
