"""`/signup`: create a free account, sign it in, and go on to `next` (an authorization request that
sent the user here) or the dashboard. Sign-ups are throttled per client address (sign_in_limits).

An email that already has an account is told so ("an account with this email already exists"),
as most products do. Hiding it would need a flow that ends the same for both, "check your inbox",
and this server sends no mail: with immediate sign-in, any other answer to a taken email already
tells. What keeps this from being an enumeration oracle at scale is the throttle (each attempt,
duplicates included, counts: 10 an hour per address); the sign-in page still tells nothing. The
answer takes as long either way: the password is hashed before the insert, and a taken email
is found by the unique index, which also makes two concurrent sign-ups for one email create one
account and answer the other like any duplicate.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request

from ..storage import users
from . import browser_session, csp, sign_in_limits
from .account_forms import PASSWORD_HINT, SignUpForm
from .auth_pages import safe_next

bp = Blueprint("signup", __name__)

EMAIL_TAKEN = "An account with this email already exists. Sign in instead."


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    next_url = safe_next(request.args.get("next"))
    form = SignUpForm()
    status = 200
    if form.validate_on_submit():
        sign_in_limits.begin_sign_up()  # a 429 instead, when throttled
        try:
            user = users.create_user(form.email.data, form.name.data, form.password.data)
        except users.DuplicateEmail:
            form.email.errors.append(EMAIL_TAKEN)
            status = 409
        else:
            browser_session.sign_in(user)
            flash("Welcome to authserver: your account is ready.", "success")
            return redirect(next_url)
    elif form.is_submitted():
        status = 400
    csp.allow_form_redirect_after_sign_in(next_url)
    return render_template("signup.html", form=form, next_url=next_url, password_hint=PASSWORD_HINT), status
