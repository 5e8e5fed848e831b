"""`/dashboard/authorized-apps`: the apps the account let act for it (its consents), and taking
that back. Removing an app forgets the consent (the next authorization asks again) and revokes
the refresh tokens the app holds for the account with the access tokens issued with them
(storage.consents.withdraw); an access token from a code exchange without a refresh token runs
out on its own, within the access-token lifetime."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from .. import audit
from ..oauth.scopes import SCOPES
from ..storage import consents

bp = Blueprint("dashboard_authorized_apps", __name__, url_prefix="/dashboard")


class RemoveAccessForm(FlaskForm):
    """No fields: the CSRF token is the point."""


@bp.get("/authorized-apps")
@login_required
def authorized_apps():
    apps = [
        {"client_id": client.client_id, "name": client.name, "granted_at": consent.updated_at,
         "scopes": [(scope, SCOPES.get(scope, scope)) for scope in consent.scope.split()]}
        for consent, client in consents.authorized_apps(current_user.id)
    ]
    return render_template("dashboard/authorized_apps.html", apps=apps, form=RemoveAccessForm(),
                           active="authorized_apps")


@bp.post("/authorized-apps/<client_id>/remove")
@login_required
def remove_access(client_id: str):
    if not RemoveAccessForm().validate_on_submit():
        abort(400, "The form expired or was not sent from this site. Try again.")
    if not consents.withdraw(current_user.id, client_id):
        abort(404)  # never authorized, someone else's or unknown: the same answer
    audit.record("consent_revoked", account=current_user.public_id, client=client_id)
    flash("Access removed. The app's tokens for your account no longer work.", "success")
    return redirect(url_for(".authorized_apps"))
