"""The real authorization server for resource-side tests: the Flask app `create_app` builds,
served over HTTP by werkzeug on a free 127.0.0.1 port in a thread (discovery and JWKS, as a
resource service fetches them), with real tokens minted through its token endpoint in-process.
Also: a settable clock for the key cache, forgeries signed with the server's own keys, the live
user's API keys, and a count of the HTTP requests the server answered, per path."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Flask
from joserfc import jws, jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from authserver.app import create_app
from authserver.oauth.keys import KeyStore
from authserver.storage import api_keys
from authserver.storage.clients import create_client
from authserver.storage.users import create_user, find_by_email

from ..conftest import PASSWORD, REDIRECT_URI, _empty_tables
from ..e2e.processes import HOST, free_port
from ..flows.tokens import user_tokens

AUDIENCE = "http://127.0.0.1:5001"  # the default AUTHSERVER_API_AUDIENCE
RELOAD_SECONDS = 1  # AUTHSERVER_KEY_RELOAD_SECONDS: the server follows a rotation within this
USER_SCOPE = "openid read:users write:data"


class Clock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LiveAuthServer:
    app: Flask
    keys_dir: Path
    database_url: str
    issuer: str
    client_id: str
    client_secret: str
    email: str
    _user_tokens: dict | None = None
    _active: object = None
    requests: Counter = field(default_factory=Counter)  # HTTP requests answered, by path

    @classmethod
    def start(cls, tmp_dir: Path, database_url: str) -> "LiveAuthServer":
        keys_dir = tmp_dir / "keys"
        KeyStore(keys_dir).ensure_active()
        port = free_port()
        issuer = f"http://{HOST}:{port}"
        app = create_app({
            "issuer": issuer,
            "database_url": database_url,
            "keys_dir": str(keys_dir),
            "instance_dir": str(tmp_dir / "instance"),
            "secret_key": "resource-tests-secret-" + "x" * 32,
            "api_audience": AUDIENCE,
            "key_reload_seconds": str(RELOAD_SECONDS),
        })
        email = f"pro-{secrets.token_hex(4)}@example.com"
        with app.app_context():
            create_user(email, "Ada Lovelace", PASSWORD, "pro")
            client, secret = create_client(
                name="Resource Tests", redirect_uris=[REDIRECT_URI],
                grant_types=["authorization_code", "refresh_token", "client_credentials"],
                scope="openid profile read:users write:data", public=False,
            )
            client_id = client.client_id
        server = cls(app, keys_dir, database_url, issuer, client_id, secret, email)
        server._http = make_server(HOST, port, server._counting)
        server._thread = threading.Thread(target=server._http.serve_forever, daemon=True)
        server._thread.start()
        return server

    def _counting(self, environ, start_response):
        self.requests[environ.get("PATH_INFO", "")] += 1
        return self.app(environ, start_response)

    def stop_http(self) -> None:
        """Stop answering HTTP (idempotent); tokens can still be minted in-process."""
        if self._thread.is_alive():
            self._http.shutdown()
            self._thread.join()
            self._http.server_close()

    def close(self) -> None:
        self.stop_http()
        _empty_tables(self.database_url)

    # -- real tokens -------------------------------------------------------------

    def client_token(self, scope: str = "read:users") -> str:
        response = self.app.test_client().post(
            "/oauth/token", data={"grant_type": "client_credentials", "scope": scope},
            auth=(self.client_id, self.client_secret),
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]

    def user_tokens(self) -> dict:
        """One sign-in, consent and code exchange per server (consent is then remembered): its
        token response, with an access token and an ID token."""
        if self._user_tokens is None:
            self._user_tokens = user_tokens(self.app.test_client(), self.client_id, self.client_secret,
                                            self.email, scope=USER_SCOPE)
        return self._user_tokens

    # -- the live user's API keys ---------------------------------------------------

    def api_key(self, scopes: str = "read:users", expires_at: int | None = None) -> tuple[str, str]:
        """A new API key of the live user: (its key_id, the key in clear)."""
        with self.app.app_context():
            row, key = api_keys.create(find_by_email(self.email).id, "tests", scopes.split(), expires_at)
            return row.public_id, key

    def revoke_api_key(self, key_id: str) -> None:
        with self.app.app_context():
            assert api_keys.revoke(find_by_email(self.email).id, key_id)

    # -- keys ----------------------------------------------------------------------

    def active_key(self):
        """The signing key (read once per rotation: loading a private key is slow)."""
        if self._active is None:
            self._active = KeyStore(self.keys_dir).active_key()
        return self._active

    def rotate(self) -> str:
        """`authserver keys rotate --force`; returns the new active kid once the server signs with it."""
        store = KeyStore(self.keys_dir)
        store.rotate(retired_lifetime=3600, force=True)
        self._active = None
        kid = self.active_key().kid
        deadline = time.monotonic() + RELOAD_SECONDS + 10
        while kid_of(self.client_token()) != kid:
            assert time.monotonic() < deadline, "the server did not start signing with the new key"
            time.sleep(0.1)
        return kid

    # -- forgeries -----------------------------------------------------------------

    def claims(self, **overrides) -> dict:
        """Claims shaped like the server's (authserver/oauth/tokens.py); None removes one."""
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": AUDIENCE, "sub": "user_123", "client_id": self.client_id,
                  "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 3600,
                  "scope": ["read:users"], "plan": "pro"}
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def sign(self, claims: dict | None = None, *, key: RSAKey | None = None, alg: str = "RS256", **header) -> str:
        """`claims` signed with `alg` by the server's active key (or `key`), kid the active key's."""
        active = self.active_key()
        header = {"alg": alg, "typ": "at+jwt", "kid": active.kid, **header}
        header = {name: value for name, value in header.items() if value is not None}
        return jwt.encode(header, self.claims() if claims is None else claims, key or active.key, algorithms=[alg])


def sign_raw(server: LiveAuthServer, header: dict, claims: dict) -> str:
    """RS256 by hand with the server's active key, for headers joserfc would refuse to write."""
    signing_input = compact(header, claims).rsplit(".", 1)[0]
    private_key = server.active_key().key.raw_value
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def kid_of(token: str) -> str:
    return jws.extract_compact(token.encode()).headers()["kid"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict, claims: dict, signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def hs256_with_public_key(server: LiveAuthServer) -> str:
    """The classic confusion attack: HS256 keyed with the RSA public key's PEM bytes."""
    public_pem = server.active_key().key.as_pem(private=False)
    header = {"alg": "HS256", "typ": "at+jwt", "kid": server.active_key().kid}
    signing_input = compact(header, server.claims()).rsplit(".", 1)[0]
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"
