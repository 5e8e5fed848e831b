"""`/dashboard/apps`: the OAuth apps the account owns. List them, register one, rotate a secret,
delete one, with the rules and storage of `/v1/apps` (registration.account_app_registration,
clients.*_owned); refusals are shown beside the form, and nothing is stored.

A client secret (a new confidential app's, or a rotated one) is shown once, as the API keys page
shows a key: the POST seals it in the session (`shown_once`: encrypted, so the signed but
readable cookie never holds it in clear) and redirects (303) here, and the next GET takes it out
and shows it, with `Cache-Control: no-store`. A reload shows it no more, and cannot send the form
again (which would register another app, or rotate away the secret just shown).

Another account's app and an unknown client_id are both a 404 page. A missing or forged CSRF
token is refused by the app (CSRFProtect) before any view runs.
"""

from __future__ import annotations

from typing import NamedTuple

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from ..errors import html_error
from ..registration import RegistrationError, account_app_registration
from ..storage import clients
from ..storage.models import Client
from . import shown_once
from .app_forms import RegisterAppForm

bp = Blueprint("dashboard_apps", __name__, url_prefix="/dashboard/apps")

NEW_SECRET = "new_client_secret"  # shown_once name: {"client_id", "secret", "rotated"}
SECRET_ANCHOR = "client-secret"  # the panel showing it
FORM_ANCHOR = "register"  # the form, so that a refusal is in view
NO_STORE = {"Cache-Control": "no-store"}


class ShownSecret(NamedTuple):
    app: Client
    secret: str
    rotated: bool


@bp.get("")
@login_required
def apps():
    return _page(RegisterAppForm(formdata=None), _take_secret())


@bp.post("")
@login_required
def register():
    form = RegisterAppForm()
    if not form.validate_on_submit():
        return _page(form, status=400)
    try:
        registration = account_app_registration(
            name=form.name.data, redirect_uris=form.redirect_uri_lines(), public=form.client_type.data == "public",
            scopes=form.scopes.data, grant_types=form.grant_types.data)
        client, secret = clients.create_owned(current_user.id, registration)
    except RegistrationError as refused:
        form.refuse(str(refused))
        return _page(form, status=400)
    except clients.TooManyApps as refused:
        form.form_errors.append(str(refused))
        return _page(form, status=400)
    if secret is None:
        flash(f"{client.name} is registered, as a public app: it has a client ID and no secret.", "success")
        return redirect(url_for(".apps"), 303)
    return _show_once(client, secret, rotated=False)


@bp.post("/<client_id>/rotate-secret")
@login_required
def rotate_secret(client_id: str):
    client = _owned(client_id)
    if client.is_public:
        return html_error("No secret to rotate", "A public app has no client secret.", 400)
    return _show_once(client, clients.rotate_secret(client), rotated=True)


@bp.post("/<client_id>/delete")
@login_required
def delete(client_id: str):
    client = _owned(client_id)
    name = client.name
    clients.delete_owned(client)
    flash(f"{name} is deleted: its client ID, secret and tokens no longer work.", "success")
    return redirect(url_for(".apps"), 303)


def _owned(client_id: str) -> Client:
    client = clients.find_owned(current_user.id, client_id)
    if client is None:
        abort(404)
    return client


def _show_once(client: Client, secret: str, rotated: bool):
    shown_once.keep(NEW_SECRET, {"client_id": client.client_id, "secret": secret, "rotated": rotated})
    return redirect(url_for(".apps", _anchor=SECRET_ANCHOR), 303)


def _take_secret() -> ShownSecret | None:
    """The secret issued just before, if it is still the secret of one of the account's apps (not
    deleted or rotated again meanwhile)."""
    kept = shown_once.take(NEW_SECRET)
    client = clients.find_owned(current_user.id, kept["client_id"]) if kept else None
    if client is None or not client.check_client_secret(kept["secret"]):
        return None
    return ShownSecret(client, kept["secret"], kept["rotated"])


def _page(form: RegisterAppForm, shown: ShownSecret | None = None, status: int = 200):
    owned = clients.list_owned(current_user.id)
    return render_template(
        "dashboard/apps.html", active="apps", apps=owned, shown=shown, secret_anchor=SECRET_ANCHOR,
        form=form, form_anchor=FORM_ANCHOR, at_limit=len(owned) >= clients.MAX_APPS_PER_ACCOUNT,
        max_apps=clients.MAX_APPS_PER_ACCOUNT,
    ), status, NO_STORE
