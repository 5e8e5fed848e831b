"""`/oauth/logout`: OpenID Connect RP-Initiated Logout 1.0.

A logout that a valid `id_token_hint` ties to this browser session ends it at once; any other
(which a third-party page could trigger) is confirmed by the user first, through a CSRF-protected
form. The browser is then sent to a `post_logout_redirect_uri` registered for the client and
matched exactly, or shown the signed-out page.
"""

from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from flask import Blueprint, redirect, render_template, request
from flask_wtf.csrf import CSRFError, validate_csrf
from werkzeug.datastructures import MultiDict
from wtforms import ValidationError

from ..errors import html_error
from ..extensions import csrf, current_server, current_settings
from ..oauth.bearer import InvalidAccessToken, verify_id_token_hint
from ..storage import clients
from . import browser_session, csp

bp = Blueprint("rp_logout", __name__, url_prefix="/oauth")

PARAMETERS = ("id_token_hint", "post_logout_redirect_uri", "state", "client_id", "logout_hint", "ui_locales")


class LogoutRequestError(Exception):
    pass


@bp.route("/logout", methods=["GET", "POST"])
@csrf.exempt  # relying parties may POST here; our own confirmation form is checked below
def logout():
    params = request.args if request.method == "GET" else request.form
    try:
        hint, redirect_uri = _validate(params)
    except LogoutRequestError as error:
        return html_error("This sign-out link is not valid", str(error), 400)

    if _confirmed(params) or _hint_matches_session(hint):
        browser_session.sign_out()
    elif browser_session.sid() is not None:
        kept = {name: params[name] for name in PARAMETERS if params.get(name)}
        if redirect_uri:
            csp.allow_form_redirect_to(redirect_uri)  # where confirming ends
        return render_template("logout_confirm.html", params=kept)

    if redirect_uri:
        state = params.get("state")
        return redirect(add_params_to_uri(redirect_uri, [("state", state)]) if state else redirect_uri)
    return render_template("signed_out.html")


def _validate(params: MultiDict) -> tuple[dict | None, str | None]:
    """The verified hint's claims and the post-logout redirect URI, both optional."""
    for name in PARAMETERS:
        if len(params.getlist(name)) > 1:
            raise LogoutRequestError(f"The request repeats '{name}'.")
    hint = None
    if params.get("id_token_hint"):
        try:
            hint = verify_id_token_hint(params["id_token_hint"], current_server().tokens.signer,
                                        issuer=current_settings().issuer)
        except InvalidAccessToken:
            raise LogoutRequestError("The id_token_hint is not an ID token from this server.") from None
    client_id = params.get("client_id")
    hinted_client = _audience(hint) if hint else None
    if client_id and hinted_client and client_id != hinted_client:
        raise LogoutRequestError("client_id does not match the id_token_hint.")
    redirect_uri = params.get("post_logout_redirect_uri")
    if redirect_uri:
        client = clients.find_active(client_id or hinted_client or "")
        # Exact match against the client's registration, never a prefix or pattern.
        if client is None or redirect_uri not in client.post_logout_redirect_uris:
            raise LogoutRequestError("The post_logout_redirect_uri is not registered for this client.")
    return hint, redirect_uri


def _audience(claims: dict) -> str | None:
    aud = claims.get("aud")
    if isinstance(aud, list):
        return aud[0] if len(aud) == 1 else claims.get("azp")
    return aud


def _hint_matches_session(hint: dict | None) -> bool:
    """The hint names this very session (its sid), so the relying party speaks for this user."""
    return hint is not None and hint.get("sid") is not None and hint.get("sid") == browser_session.sid()


def _confirmed(params: MultiDict) -> bool:
    if request.method != "POST" or params.get("confirm") != "yes":
        return False
    try:
        validate_csrf(params.get("csrf_token"))
    except ValidationError as error:
        raise CSRFError(str(error)) from None
    return True
