"""The account dashboard: `/dashboard` (overview: the account and its plan's limits) and
`/dashboard/account` (password change). Other dashboard pages live in their own modules and use
templates/dashboard/layout.html.

A password change ends every other browser session of the account (their cookies no longer match
the new password: browser_session) and revokes the refresh tokens bound to those sessions, as
signing out of them would: changing one's password is what people do when they fear someone else
knows it, and that someone may hold a session. This session stays signed in. Grants with
offline_access outlive sessions by design and stay (the Authorized apps page withdraws them).
Wrong current passwords count as failed sign-ins of the account (sign_in_limits).
"""

from __future__ import annotations

import time

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from ..passwords import verify_password
from ..resource.ratelimit import PlanLimits, custom_limits, limits_for
from ..storage import refresh_tokens, users
from . import browser_session, sign_in_limits
from .account_forms import PASSWORD_HINT, PasswordChangeForm

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

PLAN_NAMES = {"free": "Free", "pro": "Pro", "enterprise": "Enterprise"}


@bp.get("")
@login_required
def overview():
    user = current_user._get_current_object()
    limits = limits_for(user.plan, custom_limits(user.rate_limits))
    return render_template("dashboard/overview.html", user=user, plan_name=PLAN_NAMES.get(user.plan, user.plan),
                           limits=plan_limit_rows(limits), active="overview")


def plan_limit_rows(limits: PlanLimits) -> list[tuple[str, str]]:
    """The plan's limits as (what, how much) for people: "Unlimited" where there is none."""
    return [
        ("Requests per hour", f"{limits.per_hour:,}" if limits.per_hour else "Unlimited"),
        ("Burst", f"{limits.per_minute:,} per minute" if limits.per_minute else "Unlimited"),
    ]


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    user = current_user._get_current_object()
    form = PasswordChangeForm(user.email)
    status = 200
    if form.validate_on_submit():
        sign_in_limits.begin_password_check(user.email)  # a 429 instead, when throttled
        if not verify_password(user.password_hash, form.current_password.data):
            sign_in_limits.password_refused()
            form.current_password.errors.append("This is not your current password.")
            status = 400
        else:
            sign_in_limits.password_accepted(user.email)
            if form.password.data == form.current_password.data:
                form.password.errors.append("Choose a password different from your current one.")
                status = 400
            else:
                # Both in one transaction: set_password commits the revocation with the new hash.
                refresh_tokens.revoke_other_sessions(user.id, browser_session.sid(), int(time.time()))
                users.set_password(user, form.password.data)
                browser_session.password_changed(user)
                flash("Your password was changed. Every other browser session was signed out.", "success")
                return redirect(url_for("dashboard.account"))
    elif form.is_submitted():
        status = 400
    return render_template("dashboard/account.html", user=user, form=form, password_hint=PASSWORD_HINT,
                           active="account"), status
