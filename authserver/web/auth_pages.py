"""Browser sign-in: `/login` and `/logout` on Flask-Login sessions, CSRF-protected forms, sign-in
attempts throttled (sign_in_limits); `/` sends a signed-in user to the dashboard."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from .. import audit
from ..extensions import login_manager
from ..passwords import verify_password
from ..storage import users
from . import browser_session, csp, sign_in_limits

bp = Blueprint("auth", __name__)

# One message for every failure: it must not tell which part was wrong.
LOGIN_FAILED = "The email or password is not correct."


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class LogoutForm(FlaskForm):
    pass


@login_manager.user_loader
def load_user(public_id: str):
    user = users.find_by_public_id(public_id)
    if user is None or not user.is_active or not browser_session.is_current(user):
        return None  # unknown, disabled, or the password changed since this session began
    return user


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = safe_next(request.args.get("next"))
    form = LoginForm()
    if request.method == "GET" and request.args.get("login_hint"):
        form.email.data = request.args["login_hint"]  # OIDC login_hint: prefill, nothing more
    error = None
    if form.validate_on_submit():
        sign_in_limits.begin_password_check(form.email.data)  # a 429 instead, when throttled
        user = users.find_by_email(form.email.data)
        password_ok = verify_password(user.password_hash if user else None, form.password.data)
        if user is not None and password_ok and user.is_active:
            sign_in_limits.password_accepted(form.email.data)
            browser_session.sign_in(user)
            audit.record("login_succeeded", account=user.public_id)
            return redirect(next_url)
        sign_in_limits.password_refused()
        audit.record("login_failed", account=user.public_id if user else None,
                     reason="unknown_account" if user is None else "wrong_password" if not password_ok
                     else "account_disabled")
        error = LOGIN_FAILED
    elif request.method == "POST":
        error = LOGIN_FAILED
    status = 401 if error else 200
    csp.allow_form_redirect_after_sign_in(next_url)
    return render_template("login.html", form=form, error=error, next_url=next_url), status


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    form = LogoutForm()
    if form.validate_on_submit():
        browser_session.sign_out()
        return render_template("signed_out.html")
    return render_template("logout.html", form=form, user=current_user)


def safe_next(value: str | None) -> str:
    """Only a path on this server: never an absolute or scheme-relative URL (open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return url_for("dashboard.overview")
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return url_for("dashboard.overview")
    return value


@bp.get("/")
def home():
    return redirect(url_for("dashboard.overview" if current_user.is_authenticated else "auth.login"))
