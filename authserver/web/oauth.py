"""`/oauth/authorize` (browser: login, consent) and `/oauth/token` (clients)."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from ..errors import html_error
from ..extensions import csrf, current_server
from ..oauth.requests import OAuthRequest, token_params
from ..oauth.scopes import describe
from ..storage import consents

bp = Blueprint("oauth", __name__, url_prefix="/oauth")


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    server = current_server()
    user = current_user._get_current_object() if current_user.is_authenticated else None
    try:
        grant = server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return _authorization_error(server, error)
    if user is None:
        return redirect(url_for("auth.login", next=request.full_path))

    client = grant.request.client
    requested = grant.request.scope.split()
    if request.method == "POST":
        decision = request.form.get("decision")
        if decision not in ("allow", "deny"):
            return html_error("Bad request", "Choose Allow or Deny.", 400)
        if decision == "deny":
            return server.create_authorization_response(grant=grant, grant_user=None)
        consents.remember(user.id, client.id, set(requested))
        return server.create_authorization_response(grant=grant, grant_user=user)

    if set(requested) <= consents.granted_scopes(user.id, client.id):
        return server.create_authorization_response(grant=grant, grant_user=user)
    return render_template("consent.html", client=client, scopes=describe(requested), user=user)


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
