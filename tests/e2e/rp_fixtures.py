"""Fixtures for driving the real server with an independent OpenID Connect relying party (IdentityPython's
`idpyoidc`, not Authlib): a deployment prepared only through the `authserver` CLI, with a confidential
client registered for the whole OpenID Connect flow, and the server (`authserver serve`) running."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from idpyoidc.client.oauth2.stand_alone_client import StandAloneClient

from .processes import HOST, Workspace, free_port, new_workspace, running_server

EMAIL = "katherine@example.com"
NAME = "Katherine Johnson"
PASSWORD = "rp e2e trajectory of freedom 7"
CLIENT_NAME = "Independent Relying Party"
SCOPES = ["openid", "profile", "email", "offline_access", "read:users"]
HTTP_TIMEOUT = 10  # seconds, for every request the relying party library makes

# The library's own services, by their documented class paths: nothing of ours, nothing of Authlib.
RP_SERVICES = {
    "discovery": "idpyoidc.client.oidc.provider_info_discovery.ProviderInfoDiscovery",
    "authorization": "idpyoidc.client.oidc.authorization.Authorization",
    "access_token": "idpyoidc.client.oidc.access_token.AccessToken",
    "refresh_access_token": "idpyoidc.client.oidc.refresh_access_token.RefreshAccessToken",
    "userinfo": "idpyoidc.client.oidc.userinfo.UserInfo",
    "introspection": "idpyoidc.client.oauth2.introspection.Introspection",
    "token_revocation": "idpyoidc.client.oauth2.token_revocation.TokenRevocation",
    "end_session": "idpyoidc.client.oidc.end_session.EndSession",
}


@dataclass(frozen=True)
class RPDeployment:
    workdir: Path
    env: dict
    port: int
    issuer: str
    kid: str  # the signing key `keys generate` made
    user_id: str  # the `sub` of the user's tokens, as printed by `users create`
    client_id: str
    client_secret: str
    redirect_uri: str  # on a loopback port nobody listens on: the callback is captured, never followed
    post_logout_redirect_uri: str


@pytest.fixture(scope="module")
def rp_deployment(tmp_path_factory, e2e_database_url) -> RPDeployment:
    workspace = new_workspace(tmp_path_factory, e2e_database_url, "e2e-rp")
    rp_base = f"http://{HOST}:{free_port()}"
    redirect_uri, post_logout_redirect_uri = f"{rp_base}/callback", f"{rp_base}/signed-out"
    workspace.run("db", "upgrade")
    key = json.loads(workspace.run("keys", "generate"))
    user = json.loads(workspace.run(
        "users", "create", "--email", EMAIL, "--name", NAME, "--password-stdin", "--plan", "pro", stdin=PASSWORD + "\n",
    ))
    client = json.loads(workspace.run(
        "clients", "create", "--name", CLIENT_NAME,
        "--redirect-uri", redirect_uri, "--post-logout-redirect-uri", post_logout_redirect_uri,
        "--grant-type", "authorization_code", "refresh_token", "--scope", " ".join(SCOPES),
    ))
    assert client["token_endpoint_auth_method"] == "client_secret_basic" and client["require_pkce"] is True
    return RPDeployment(
        workdir=workspace.workdir, env=workspace.env, port=workspace.port, issuer=workspace.issuer, kid=key["kid"],
        user_id=user["id"], client_id=client["client_id"], client_secret=client["client_secret"],
        redirect_uri=redirect_uri, post_logout_redirect_uri=post_logout_redirect_uri,
    )


@pytest.fixture(scope="module")
def rp_server(rp_deployment):
    with running_server(Workspace(rp_deployment.workdir, rp_deployment.port, rp_deployment.env)) as server:
        yield server
    # Stopped by its PID: the server's main process has exited (its workers go with it).
    assert server.process.poll() is not None, "the server process is still running"


def new_relying_party(deployment: RPDeployment) -> StandAloneClient:
    """The library's stand-alone client, statically registered (client_id and secret from the CLI),
    knowing nothing of the provider but its issuer: everything else comes from discovery."""
    config = {
        "client_type": "oidc",
        "issuer": deployment.issuer,
        "client_id": deployment.client_id,
        "client_secret": deployment.client_secret,
        "redirect_uris": [deployment.redirect_uri],
        "post_logout_redirect_uris": [deployment.post_logout_redirect_uri],
        "client_authn_methods": ["client_secret_basic"],
        "preference": {
            "response_types": ["code"],
            "scopes_supported": SCOPES,
            "token_endpoint_auth_method": "client_secret_basic",
        },
        # RFC 7636 through the library's own add-on: S256 challenge on the authorization request,
        # verifier on the code exchange.
        "add_ons": {
            "pkce": {
                "function": "idpyoidc.client.oauth2.add_on.pkce.add_support",
                "kwargs": {"code_challenge_length": 64, "code_challenge_method": "S256"},
            }
        },
        "services": {name: {"class": path} for name, path in RP_SERVICES.items()},
    }
    return StandAloneClient(config=config, httpc_params={"timeout": HTTP_TIMEOUT})
