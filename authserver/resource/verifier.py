"""Verifies the authorization server's JWT access tokens (RFC 9068) on the resource side, with
the published keys only: no call to the server per request, no server code, no database.

The checks, in order (`TokenVerifier.verify`); the first that fails refuses the token:

  1. size and shape: a string of at most `max_token_bytes`, three dot-separated parts
  2. header: `alg` exactly RS256, `typ` at+jwt, a `kid`, no `crit`
  3. key: the published RS256 key named by the kid (JWKSCache; an unknown kid may refetch; when
     the issuer's keys cannot be fetched, ServiceUnavailable — 503, try again — not InvalidToken)
  4. signature: RS256 with that key
  5. claims: iss, aud, sub, client_id, jti, iat, nbf (RFC 9068 §2.2, §4), scope, plan and
     rate_limits shapes
  6. expiry: `exp` last, so TOKEN_EXPIRED means "expired and otherwise valid"

Verified tokens are remembered (the last `cache_entries`, by SHA-256 digest, never the token): a
client sends the same token with every request until it expires, and checks 2-5 (RSA above all)
cost the most. They depend on nothing but the token's bytes and its key, so a remembered token
skips them while every request still checks that its key is the one published (3: a key the
server withdrew refuses its tokens at once) and its expiry (6).

Fails closed: anything not provably valid raises InvalidToken (TOKEN_EXPIRED: TokenExpired,
a subclass), or ServiceUnavailable when its key cannot be known. Every verification option is spelled out on purpose, even where it is joserfc's
default, so that a library upgrade cannot loosen it silently.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwt import JWTClaimsRegistry

from .errors import InvalidToken, ServiceUnavailable, TokenExpired
from .jwks import JWKSCache

log = logging.getLogger(__name__)

ALGORITHM = "RS256"  # the only algorithm the server signs with (DESIGN.md, Tokens)
# RFC 9068 §4: typ is "at+jwt" or "application/at+jwt"; media types compare case-insensitively (RFC 7515 §4.1.9).
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
LEEWAY_SECONDS = 30  # clock difference tolerated on exp, nbf and iat
MAX_TOKEN_BYTES = 8192  # refused before any parsing; the server's tokens are about 1 KB
CACHE_ENTRIES = 1024  # verified tokens remembered, about 2 KB each


@dataclass(frozen=True)
class Principal:
    """Who a request acts for, from a verified credential.

    - `subject`: the account's public id (`sub`); for a client_credentials token, the client itself
    - `client_id`: the OAuth client the token was issued to; None for an API key (no client involved)
    - `scopes`: the granted scopes
    - `plan`: the account's plan (free, pro, enterprise), None when the token carries none
    - `rate_limits`: an enterprise account's custom limits, read-only, as the `rate_limits` claim
      holds them (keys `per_hour`, `per_minute`, each a positive int or None; a missing key is no
      limit of that kind); None when the token carries none. Turn them into the limits to enforce
      with `ratelimit.custom_limits` and `ratelimit.limits_for(principal.plan, ...)`.
    - `credential_id`: identifies the credential for rate limits and usage: the client_id for a
      JWT, the key's id (`key_…`) for an API key
    - `token_id`: the token's `jti`; an API key's id
    - `expires_at`: the token's `exp`, Unix seconds; None for an API key that never expires
    - `claims`: every claim of the token (for an API key, the introspection answer), read-only
    """

    subject: str
    client_id: str | None
    scopes: tuple[str, ...]
    plan: str | None
    credential_id: str
    token_id: str
    expires_at: int | None
    claims: Mapping[str, Any]
    rate_limits: Mapping[str, int | None] | None = None

    def has_scopes(self, *required: str) -> bool:
        return set(required) <= set(self.scopes)


@dataclass(frozen=True)
class _Verified:
    """A token that passed checks 1-5: its principal, and the key that verified it."""

    principal: Principal
    kid: str
    key: Any


class TokenVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        leeway: int = LEEWAY_SECONDS,
        *,
        keys: JWKSCache | None = None,
        max_token_bytes: int = MAX_TOKEN_BYTES,
        cache_entries: int = CACHE_ENTRIES,
    ):
        """`issuer` and `audience` exactly as in the tokens' `iss` and `aud`. `keys`: the key
        cache to use (one per issuer and process; shared by every verifier of that issuer), by
        default a JWKSCache for `issuer` with its default timings."""
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.keys = keys if keys is not None else JWKSCache(issuer)
        if self.keys.issuer != issuer:
            raise ValueError("the key cache is for another issuer")
        self.max_token_bytes = max_token_bytes
        # Deliberate, every one of them (joserfc checks nbf and iat whenever present):
        self._claims = JWTClaimsRegistry(
            leeway=leeway,  # for nbf and iat here, for exp below
            iss={"essential": True, "value": issuer},  # exact string comparison
            aud={"essential": True, "value": audience},  # a string equal to it, or a list holding it
            sub={"essential": True},  # RFC 9068 §2.2: required
            client_id={"essential": True},  # RFC 9068 §2.2: required
            jti={"essential": True},  # RFC 9068 §2.2: required
            iat={"essential": True},  # RFC 9068 §2.2: required; not in the future beyond the leeway
        )
        self._expiry = JWTClaimsRegistry(leeway=leeway, exp={"essential": True})  # required, checked last
        self.cache_entries = cache_entries
        self._verified: dict[bytes, _Verified] = {}  # by token digest, oldest first
        self._cache_lock = threading.Lock()  # for adding and evicting; reads take no lock

    def verify(self, token: str) -> Principal:
        """The principal the token stands for, or InvalidToken / TokenExpired; ServiceUnavailable
        when its key cannot be known because the issuer's keys cannot be fetched."""
        try:
            return self._verify(token)
        except InvalidToken as exc:
            log.debug("access token refused: %s", exc.detail)
            raise

    # -- the checks, in order ----------------------------------------------------

    def _verify(self, token: str) -> Principal:
        self._check_shape(token)
        digest = hashlib.sha256(token.encode("ascii")).digest()
        verified = self._verified.get(digest)
        if verified is None or self.keys.get_key(verified.kid) is not verified.key:
            verified = self._verify_fully(token)
            self._remember(digest, verified)
        self._check_expiry(verified.principal.claims)
        return verified.principal

    def _verify_fully(self, token: str) -> _Verified:
        """Checks 2-6."""
        header = self._header(token)
        key = self._key(header)
        claims = self._signed_claims(token, key)
        self._check_claims(claims)
        self._check_expiry(claims)  # here too: a principal needs a valid exp
        return _Verified(self._principal(claims), header["kid"], key)

    def _remember(self, digest: bytes, verified: _Verified) -> None:
        with self._cache_lock:
            self._verified[digest] = verified
            while len(self._verified) > self.cache_entries:
                del self._verified[next(iter(self._verified))]

    def _check_shape(self, token: object) -> None:
        if not isinstance(token, str) or not token:
            raise InvalidToken("not a string")
        if len(token) > self.max_token_bytes:  # before parsing: no work for an oversized token
            raise InvalidToken(f"longer than {self.max_token_bytes} characters")
        if not token.isascii() or token.count(".") != 2:
            raise InvalidToken("not a JWS compact serialization")

    def _header(self, token: str) -> dict:
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()  # parsed, not yet trusted
        except (JoseError, ValueError, TypeError):
            raise InvalidToken("malformed") from None
        if header.get("alg") != ALGORITHM:  # no "none", no HS* (RFC 8725 §3.1), no RS384/PS256
            raise InvalidToken(f"alg {header.get('alg')!r}")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:  # RFC 9068 §4: not an ID token
            raise InvalidToken(f"typ {typ!r}")
        if "crit" in header:  # RFC 7515 §4.1.11: we understand no extension, so none can be critical
            raise InvalidToken("crit header")
        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise InvalidToken("no kid")
        return header

    def _key(self, header: dict):
        # The key is chosen by kid among the published RS256 keys only: never from the token's own
        # jwk, jku, x5u or x5c headers.
        key = self.keys.get_key(header["kid"])
        if key is None:
            if self.keys.unreachable:
                # Perhaps genuine, signed by a key published while the issuer was out of reach:
                # 503 (try again), not 401 (which would make the client drop a good token).
                raise ServiceUnavailable(f"kid {header['kid']!r} unknown and the issuer's keys cannot be fetched")
            raise InvalidToken(f"kid {header['kid']!r} is not published")
        return key

    def _signed_claims(self, token: str, key) -> dict:
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM]).claims  # explicit: RS256 only
        except (JoseError, ValueError, TypeError):
            raise InvalidToken("bad signature or payload") from None

    def _check_claims(self, claims: dict) -> None:
        try:
            self._claims.validate({name: value for name, value in claims.items() if name != "exp"})
        except JoseError as exc:
            raise InvalidToken(f"claims: {exc}") from None
        if not isinstance(claims["client_id"], str):
            raise InvalidToken("client_id is not a string")
        if not isinstance(claims.get("plan", ""), str):
            raise InvalidToken("plan is not a string")
        _scopes(claims)
        rate_limits_of(claims)

    def _check_expiry(self, claims: dict) -> None:
        try:
            self._expiry.validate({"exp": claims.get("exp")})
        except ExpiredTokenError:
            raise TokenExpired("expired") from None
        except JoseError as exc:
            raise InvalidToken(f"exp: {exc}") from None

    def _principal(self, claims: dict) -> Principal:
        return Principal(
            subject=claims["sub"],
            client_id=claims["client_id"],
            scopes=_scopes(claims),
            plan=claims.get("plan"),
            credential_id=claims["client_id"],
            token_id=claims["jti"],
            expires_at=int(claims["exp"]),
            claims=MappingProxyType(dict(claims)),
            rate_limits=rate_limits_of(claims),
        )


RATE_LIMIT_KINDS = ("per_hour", "per_minute")


def rate_limits_of(claims: Mapping[str, Any]) -> Mapping[str, int | None] | None:
    """The `rate_limits` claim (or introspection field), read-only, if its shape is exactly the
    server's: an object with only `per_hour` / `per_minute`, each a positive integer or null.
    Anything else raises InvalidToken (fail closed: a mangled limit must not turn into "unlimited")."""
    if "rate_limits" not in claims:
        return None
    value = claims["rate_limits"]
    if not isinstance(value, dict) or not set(value) <= set(RATE_LIMIT_KINDS):
        raise InvalidToken("rate_limits is not an object of per_hour / per_minute")
    for kind, limit in value.items():
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidToken(f"rate_limits.{kind} is not a positive integer or null")
    return MappingProxyType(dict(value))


def _scopes(claims: dict) -> tuple[str, ...]:
    """`scope` as the server writes it (a JSON array) or as RFC 8693 §4.2 / RFC 9068 §2.2.3 do (a
    space-separated string); absent: no scopes."""
    scope = claims.get("scope", [])
    if isinstance(scope, str):
        return tuple(scope.split())
    if isinstance(scope, list) and all(isinstance(item, str) and item and " " not in item for item in scope):
        return tuple(scope)
    raise InvalidToken("scope is neither a string nor an array of scope tokens")
