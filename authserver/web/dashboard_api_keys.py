"""`/dashboard/api-keys`: the signed-in owner generates, rotates and revokes API keys, with the
rules of the `/v1/api-keys` JSON API (storage.api_keys rules on names, scopes, expiry, grace
periods and the number of keys; its refusals are shown as they are).

- A new key (generated or rotated) is shown once: the POST seals it in the session
  (`shown_once`: encrypted, never readable in the cookie) and redirects (303) to this page, whose
  next GET takes it out of the session and shows it. A reload shows only prefix…last four.
- Refused input re-renders the page with 400, the reason beside the form; nothing is stored. An
  id in a URL that is not one of the account's listed keys (unknown, another account's, revoked,
  expired) is a 404 page, as in the JSON API: nothing is revealed. A missing or forged CSRF token
  is refused by the app (CSRFProtect) before any view runs.
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from ..storage import api_keys
from ..storage.models import ApiKey
from . import shown_once
from .api_key_display import key_rows, shown_as, utc
from .api_key_forms import NewKeyForm, RotateForm

bp = Blueprint("dashboard_api_keys", __name__, url_prefix="/dashboard/api-keys")

NEW_KEY = "new_api_key"  # shown_once name: {"id": public id, "key": the key in clear}
NEW_KEY_ANCHOR = "new-key"  # the panel showing it; the forms' own anchors bring a refusal into view


@bp.get("")
@login_required
def page():
    return _render(new_key=_take_new_key())


@bp.post("")
@login_required
def generate():
    form = NewKeyForm()
    if not form.validate_on_submit():
        return _render(new_key_form=form), 400
    try:
        row, key = api_keys.create(current_user.id, form.name.data or "", form.scopes.data or [], form.expires_at())
    except api_keys.InvalidApiKeyRequest as refused:
        return _render(new_key_form=form, generate_refused=f"The key was not generated. {refused}"), 400
    return _show_once(row.public_id, key)


@bp.post("/<key_id>/rotate")
@login_required
def rotate(key_id: str):
    _owned_or_404(key_id)
    form = RotateForm()
    if not form.validate_on_submit():
        return _rotate_refused(key_id, " ".join(form.grace.errors))
    try:
        rotated = api_keys.rotate(current_user.id, key_id, form.grace_seconds)
    except api_keys.InvalidApiKeyRequest as refused:
        return _rotate_refused(key_id, str(refused))
    if rotated is None:  # revoked meanwhile
        abort(404)
    row, key = rotated
    return _show_once(row.public_id, key)


@bp.post("/<key_id>/revoke")
@login_required
def revoke(key_id: str):
    row = _owned_or_404(key_id)
    name, display = row.name, shown_as(row)
    if not api_keys.revoke(current_user.id, key_id):
        abort(404)
    flash(f"Revoked “{name}” ({display}). It no longer works; API services that cache keys may accept it for "
          "up to their cache time (30 seconds by default).", "success")
    return redirect(url_for(".page"), 303)


def _rotate_refused(key_id: str, reason: str):
    return _render(rotate_refused=(key_id, f"The key was not rotated. {reason}")), 400


def _show_once(public_id: str, key: str):
    shown_once.keep(NEW_KEY, {"id": public_id, "key": key})
    return redirect(url_for(".page", _anchor=NEW_KEY_ANCHOR), 303)


def _take_new_key() -> dict | None:
    """The key generated or rotated just before, with what the page says about it; None when
    there is none, or it is no longer one of the account's listed keys."""
    kept = shown_once.take(NEW_KEY)
    row = api_keys.find_owned(current_user.id, kept["id"]) if kept else None
    if row is None:
        return None
    old = row.rotated_from
    return {
        "key": kept["key"],
        "name": row.name,
        "shown_as": shown_as(row),
        "replaces": shown_as(old) if old else None,
        "old_works_until": utc(old.expires_at) if old and old.is_usable(time.time()) else None,
    }


def _owned_or_404(key_id: str) -> ApiKey:
    row = api_keys.find_owned(current_user.id, key_id)
    if row is None:
        abort(404)
    return row


def _render(new_key: dict | None = None, new_key_form: NewKeyForm | None = None, generate_refused: str | None = None,
            rotate_refused: tuple[str, str] | None = None):
    return render_template(
        "dashboard/api_keys.html", active="api_keys",
        keys=key_rows(api_keys.list_for_user(current_user.id)),
        new_key=new_key, new_key_anchor=NEW_KEY_ANCHOR,
        form=new_key_form or NewKeyForm(formdata=None),
        generate_refused=generate_refused,
        rotate_form=RotateForm(formdata=None),
        rotate_refused=rotate_refused,
    )
