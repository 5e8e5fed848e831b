"""A browser and a client app, by hand, with requests: what end-to-end tests need to sign a user in,
consent and redeem the code, without a real browser (tests/browser/ has the real one)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

@dataclass
class Form:
    action: str
    hidden: dict = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(Form(action=attrs.get("action") or ""))
        elif tag == "input" and self.forms and attrs.get("type") == "hidden" and attrs.get("name"):
            self.forms[-1].hidden[attrs["name"]] = attrs.get("value") or ""


def the_form(page: requests.Response) -> Form:
    """The page's one form, its action resolved against the page URL as a browser does."""
    parser = _FormParser()
    parser.feed(page.text)
    assert len(parser.forms) == 1, f"expected one form on {page.url}:\n{page.text}"
    form = parser.forms[0]
    assert form.hidden.get("csrf_token"), f"the form on {page.url} has no CSRF token"
    return Form(action=urljoin(page.url, form.action), hidden=form.hidden)


def redirect_location(response: requests.Response) -> str:
    """Where a 302 points, made absolute against the request URL (Location may be relative)."""
    assert response.status_code == 302, f"{response.status_code} from {response.url}:\n{response.text}"
    return urljoin(response.url, response.headers["Location"])


def same_url(a: str, b: str) -> bool:
    """Equal up to the encoding of the query (a redirect may re-quote it)."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc, pa.path, parse_qs(pa.query)) == (pb.scheme, pb.netloc, pb.path, parse_qs(pb.query))


def query_of(url: str) -> dict:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def pkce_pair() -> tuple[str, str]:
    # RFC 7636 §4.1-4.2: a high-entropy verifier; challenge = BASE64URL(SHA256(verifier)), unpadded.
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge



def user_tokens(server, *, client: tuple[str, str], redirect_uri: str, email: str, password: str,
                scope: str) -> dict:
    """Sign in, allow, redeem the code with PKCE: the token response (access, refresh, ID token)."""
    verifier, challenge = pkce_pair()
    authorize_url = server.url("/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client[0], "redirect_uri": redirect_uri, "scope": scope,
        "state": secrets.token_urlsafe(16), "code_challenge": challenge, "code_challenge_method": "S256",
    }))
    with requests.Session() as browser:
        login_page = browser.get(authorize_url, timeout=10)  # redirected to /login
        login_form = the_form(login_page)
        browser.post(login_form.action, data={**login_form.hidden, "email": email, "password": password},
                     allow_redirects=False, timeout=10)
        consent_page = browser.get(authorize_url, allow_redirects=False, timeout=10)
        consent_form = the_form(consent_page)
        allowed = browser.post(consent_form.action, data={**consent_form.hidden, "decision": "allow"},
                               allow_redirects=False, timeout=10)
        code = query_of(redirect_location(allowed))["code"]
    response = requests.post(server.url("/oauth/token"), auth=client, timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier,
    })
    assert response.status_code == 200, response.text
    return response.json()
