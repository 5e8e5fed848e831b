"""A deployment for fault tests, prepared with the CLI: a database, keys, a confidential app
(authorization code + refresh token), a client_credentials client and a user; and a signed-in
browser that has consented, so that each GET /oauth/authorize issues a code at once."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import requests

from ..e2e.by_hand import pkce_pair, query_of, redirect_location, the_form
from ..e2e.processes import Workspace, new_workspace

EMAIL, PASSWORD = "faults@example.com", "faults correct horse battery staple"
REDIRECT_URI = "https://app.example.com/callback"
SCOPE = "openid read:users"


@dataclass
class FaultDeployment:
    workspace: Workspace
    app: tuple[str, str]  # client_id, client_secret (authorization_code, refresh_token)
    service: tuple[str, str]  # client_credentials


def prepare(tmp_path_factory, database_url: str, name: str, **settings: str) -> FaultDeployment:
    workspace = new_workspace(tmp_path_factory, database_url, name, **settings)
    workspace.run("db", "upgrade")
    workspace.run("keys", "generate")
    app = json.loads(workspace.run("clients", "create", "--name", "Faults App", "--redirect-uri", REDIRECT_URI,
                                   "--grant-type", "authorization_code", "refresh_token", "--scope", SCOPE))
    service = json.loads(workspace.run("clients", "create", "--name", "Faults Service",
                                       "--grant-type", "client_credentials", "--scope", "read:users"))
    workspace.run("users", "create", "--email", EMAIL, "--name", "Fault Tester", "--password-stdin",
                  stdin=PASSWORD + "\n")
    return FaultDeployment(workspace, (app["client_id"], app["client_secret"]),
                           (service["client_id"], service["client_secret"]))


class Browser:
    """A signed-in user agent that has allowed the app once: `code()` is then one GET."""

    def __init__(self, server, deployment: FaultDeployment) -> None:
        self.server = server
        self.deployment = deployment
        self.session = requests.Session()
        verifier, url = self.authorize_url()
        login_form = the_form(self.session.get(url, timeout=10))
        self.session.post(login_form.action, data={**login_form.hidden, "email": EMAIL, "password": PASSWORD},
                          allow_redirects=False, timeout=10)
        consent_form = the_form(self.session.get(url, allow_redirects=False, timeout=10))
        allowed = self.session.post(consent_form.action, data={**consent_form.hidden, "decision": "allow"},
                                    allow_redirects=False, timeout=10)
        redirect_location(allowed)

    def authorize_url(self) -> tuple[str, str]:
        verifier, challenge = pkce_pair()
        return verifier, self.server.url("/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": self.deployment.app[0], "redirect_uri": REDIRECT_URI,
            "scope": SCOPE, "state": secrets.token_urlsafe(16), "code_challenge": challenge,
            "code_challenge_method": "S256",
        }))

    def cookies(self) -> dict:
        return self.session.cookies.get_dict()


def code_from(response: requests.Response) -> str:
    return query_of(redirect_location(response))["code"]
