"""`/oauth/authorize` (browser: login, consent) and `/oauth/token` (clients)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from .. import audit
from ..errors import html_error
from ..extensions import csrf, current_server
from ..oauth.id_tokens import SignIn
from ..oauth.oidc_request import REAUTHENTICATE
from ..oauth.requests import OAuthRequest, token_params
from ..oauth.scopes import describe
from ..storage import consents
from . import browser_session, csp

bp = Blueprint("oauth", __name__, url_prefix="/oauth")


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    """Validate the request, then, in order: authenticate, ask consent, issue the code."""
    server = current_server()
    user = current_user._get_current_object() if current_user.is_authenticated else None
    try:
        grant = server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return _authorization_error(server, error)
    oidc = grant.request.oidc

    if user is None or oidc.wants_new_login(browser_session.auth_time(), int(time.time())):
        if "none" in oidc.prompt:
            return _redirect_error(server, grant, LoginRequiredError())
        return redirect(url_for("auth.login", next=_after_login_url(), login_hint=oidc.login_hint))

    grant.request.sign_in = SignIn(browser_session.auth_time(), browser_session.sid(), oidc.nonce)
    client = grant.request.client
    requested = grant.request.scope.split()
    if request.method == "POST":
        decision = request.form.get("decision")
        if decision not in ("allow", "deny"):
            return html_error("Bad request", "Choose Allow or Deny.", 400)
        if decision == "deny":
            return _respond(server, grant, None)
        consents.remember(user.id, client.id, set(requested))
        audit.record("consent_granted", account=user.public_id, client=client.client_id, scopes=requested)
        return _respond(server, grant, user)

    consented = set(requested) <= consents.granted_scopes(user.id, client.id)
    if consented and "consent" not in oidc.prompt:
        return _respond(server, grant, user)
    if "none" in oidc.prompt:
        return _redirect_error(server, grant, ConsentRequiredError())
    csp.allow_form_redirect_to(grant.redirect_uri)  # Allow and Deny both end there
    return render_template("consent.html", client=client, scopes=describe(requested), user=user)


def _respond(server, grant, user):
    """The authorization response for the validated grant (a code, or access_denied when `user` is
    None), on the request it validated: without it, Authlib would parse this request again."""
    return server.create_authorization_response(grant.request, grant=grant, grant_user=user)


def _after_login_url() -> str:
    """This request without what signing in satisfies (prompt=login|select_account, max_age),
    so that coming back after sign-in does not ask for it again."""
    args = request.args.to_dict()
    args.pop("max_age", None)
    prompt = [value for value in args.pop("prompt", "").split() if value not in REAUTHENTICATE]
    if prompt:
        args["prompt"] = " ".join(prompt)
    return f"{request.path}?{urlencode(args)}"


def _redirect_error(server, grant, error):
    error.redirect_uri = grant.redirect_uri
    error.state = grant.request.payload.state
    return server.handle_error_response(None, error)


def _authorization_error(server, error: OAuth2Error):
    """RFC 6749 §4.1.2.1: redirect the error only to a validated redirect URI; else show it here."""
    if error.redirect_uri:
        return server.handle_error_response(None, error)
    return html_error("This sign-in link is not valid", error.description or error.error, 400)


@bp.post("/token")
@csrf.exempt
def token():
    server = current_server()
    try:
        # Also refuses plain http from a non-loopback address (Authlib's insecure_transport).
        oauth_request = OAuthRequest(request, token_params(request))
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    return server.create_token_response(oauth_request)
