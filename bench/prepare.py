"""What the scenarios need, made through the real interfaces only (the `authserver` CLI, the
browser pages, the token endpoint and /v1/api-keys): a client for client_credentials, an app for
the code flow and refreshes, the API service's own client, an account (enterprise with very large
custom limits, so that the API's rate limiter counts every request in Redis yet never refuses),
its browser session with consent remembered, refresh tokens, a JWT and an API key."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

import requests

from .stack import Stack

EMAIL = "bench@example.com"
NAME = "Bench User"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # nothing listens there: the code is read from Location
APP_SCOPE = "openid profile email offline_access read:users keys:manage"  # consented once
FLOW_SCOPE = "openid profile email read:users"  # what each benchmarked flow asks for
API_SCOPE = "read:users"
CUSTOM_LIMIT = "1000000000"  # per hour and per minute: counted, never reached
USER_AGENT = "authserver-bench"  # the same for the session's sign-in and for wrk (Flask-Login's session id)


def basic(client_id: str, secret: str) -> str:
    """client_secret_basic: form-urlencode each part, then base64 (RFC 6749 §2.3.1)."""
    return base64.b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append((attrs.get("action") or "", {}))
        elif tag == "input" and self.forms and attrs.get("type") == "hidden" and attrs.get("name"):
            self.forms[-1][1][attrs["name"]] = attrs.get("value") or ""


def _form(page: requests.Response) -> tuple[str, dict]:
    parser = _Forms()
    parser.feed(page.text)
    if len(parser.forms) != 1:
        raise RuntimeError(f"expected one form on {page.url} ({page.status_code}):\n{page.text[:1000]}")
    action, hidden = parser.forms[0]
    return urljoin(page.url, action), hidden


@dataclass
class Prepared:
    cc_client: tuple[str, str]
    app_client: tuple[str, str]
    api_client: tuple[str, str]
    user_id: str
    kid: str
    cookie: str  # "session=…", the signed-in browser session
    jwt: str  # the user's access token (scope includes read:users)
    api_key: str

    @property
    def cc_basic(self) -> str:
        return basic(*self.cc_client)

    @property
    def app_basic(self) -> str:
        return basic(*self.app_client)


def create_deployment(stack: Stack) -> dict:
    """Database, key, account and clients, with the CLI (before the server starts)."""
    password = secrets.token_urlsafe(16)
    out = stack.cli_batch([
        (["db", "upgrade"], None),
        (["keys", "generate"], None),
        (["users", "create", "--email", EMAIL, "--name", NAME, "--password-stdin", "--plan", "enterprise"],
         password + "\n"),
        (["users", "set-plan", "--email", EMAIL, "--plan", "enterprise", "--hourly", CUSTOM_LIMIT,
          "--burst", CUSTOM_LIMIT], None),
        (["clients", "create", "--name", "Bench client_credentials client", "--grant-type", "client_credentials",
          "--scope", API_SCOPE], None),
        (["clients", "create", "--name", "Bench app", "--redirect-uri", REDIRECT_URI,
          "--grant-type", "authorization_code", "refresh_token", "--scope", APP_SCOPE], None),
        (["clients", "create", "--name", "Bench API service", "--grant-type", "client_credentials",
          "--scope", API_SCOPE], None),
    ])
    kid = json.loads(out[1])["kid"]
    user, cc, app, api = (json.loads(text) for text in (out[2], out[4], out[5], out[6]))
    return {"kid": kid, "password": password, "user_id": user["id"],
                "cc": (cc["client_id"], cc["client_secret"]), "app": (app["client_id"], app["client_secret"]),
                "api": (api["client_id"], api["client_secret"])}


class Browser:
    """The signed-in user's browser and the app's back end, by hand, for preparation only."""

    def __init__(self, issuer: str, app_client: tuple[str, str]):
        self.issuer = issuer
        self.app_client = app_client
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def authorize_query(self, scope: str, challenge: str, state: str) -> str:
        return urlencode({"response_type": "code", "client_id": self.app_client[0], "redirect_uri": REDIRECT_URI,
                          "scope": scope, "state": state, "code_challenge": challenge,
                          "code_challenge_method": "S256"})

    def sign_in(self, password: str) -> None:
        page = self.session.get(self.issuer + "/login", timeout=10)
        action, hidden = _form(page)
        answer = self.session.post(action, data={**hidden, "email": EMAIL, "password": password},
                                   allow_redirects=False, timeout=30)
        if answer.status_code != 302:
            raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.text[:500]}")

    def consent(self, scope: str) -> None:
        _, challenge = pkce_pair()
        url = self.issuer + "/oauth/authorize?" + self.authorize_query(scope, challenge, "consent")
        page = self.session.get(url, allow_redirects=False, timeout=10)
        if page.status_code != 200:
            raise RuntimeError(f"expected the consent page, got {page.status_code} {page.headers.get('Location')}")
        action, hidden = _form(page)
        answer = self.session.post(action, data={**hidden, "decision": "allow"}, allow_redirects=False, timeout=10)
        self._code(answer)

    def _code(self, answer: requests.Response) -> str:
        location = answer.headers.get("Location", "")
        code = parse_qs(urlsplit(location).query).get("code")
        if answer.status_code != 302 or not code:
            raise RuntimeError(f"no code: {answer.status_code} {location} {answer.text[:300]}")
        return code[0]

    def tokens(self, scope: str) -> dict:
        """One whole code flow with PKCE on the remembered consent: the token response."""
        verifier, challenge = pkce_pair()
        url = self.issuer + "/oauth/authorize?" + self.authorize_query(scope, challenge, secrets.token_urlsafe(8))
        code = self._code(self.session.get(url, allow_redirects=False, timeout=10))
        answer = requests.post(self.issuer + "/oauth/token", auth=self.app_client, timeout=30, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}, headers={"User-Agent": USER_AGENT})
        if answer.status_code != 200:
            raise RuntimeError(f"token request failed: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def refresh_tokens(self, count: int, scope: str = FLOW_SCOPE) -> list[str]:
        return [self.tokens(scope)["refresh_token"] for _ in range(count)]

    @property
    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)


def prepare(stack: Stack, deployment: dict) -> tuple[Prepared, Browser]:
    """With the server running: the browser session, consent, a JWT and an API key."""
    browser = Browser(stack.issuer, deployment["app"])
    browser.sign_in(deployment["password"])
    browser.consent(APP_SCOPE)
    manage = browser.tokens(APP_SCOPE)
    for field in ("access_token", "id_token", "refresh_token"):
        if field not in manage:
            raise RuntimeError(f"the code flow returned no {field}: {sorted(manage)}")
    created = requests.post(stack.issuer + "/v1/api-keys", timeout=10, json={"name": "bench", "scopes": [API_SCOPE]},
                            headers={"Authorization": f"Bearer {manage['access_token']}", "User-Agent": USER_AGENT})
    if created.status_code != 201:
        raise RuntimeError(f"POST /v1/api-keys failed: {created.status_code} {created.text[:300]}")
    jwt = browser.tokens(FLOW_SCOPE)["access_token"]
    return Prepared(cc_client=deployment["cc"], app_client=deployment["app"], api_client=deployment["api"],
                    user_id=deployment["user_id"], kid=deployment["kid"], cookie=browser.cookie, jwt=jwt,
                    api_key=created.json()["key"]), browser


def write_pkce_file(path: Path, count: int = 512) -> Path:
    path.write_text("".join(f"{v} {c}\n" for v, c in (pkce_pair() for _ in range(count))))
    return path
