"""`create_app`: settings, extensions, keys, the OAuth server, blueprints and error handlers."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import audit
from .errors import register_error_handlers
from .extensions import SERVER_KEY, SETTINGS_KEY, csrf, login_manager
from .metrics import ServerMetrics
from .oauth.keys import KeyStore
from .oauth.server import AuthServer
from .oauth.signing import TokenSigner
from .oauth.tokens import TokenIssuer
from .settings import Settings, load_settings, with_secret_key
from .storage import clients
from .storage.db import Database
from .web import client_auth_limits, csp, dashboard, prune_schedule, sign_in_limits, signup
from .web import apps_api, dashboard_api_keys, dashboard_apps, dashboard_authorized_apps, dashboard_usage, openapi
from .web import api_keys, api_v1, auth_pages, health, oauth, rp_logout, token_management, usage, userinfo, wellknown

ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides: dict | None = None) -> Flask:
    settings = with_secret_key(load_settings(overrides))
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    _configure(app, settings)

    if settings.trusted_proxies:
        # Honour X-Forwarded-For/-Proto only from the configured number of proxies in front of us.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)

    Database(settings.database_url).init_app(app)
    clients.init_cache(app, settings.client_cache_seconds)
    store = KeyStore(settings.keys_dir, settings.key_size)
    store.ensure_active()
    tokens = TokenIssuer(
        TokenSigner.from_settings(store, settings),  # follows key rotations (AUTHSERVER_KEY_RELOAD_SECONDS)
        issuer=settings.issuer,
        audience=settings.api_audience,
        access_ttl=settings.access_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
    )
    app.extensions[SETTINGS_KEY] = settings
    app.extensions[SERVER_KEY] = AuthServer(settings, tokens)

    ServerMetrics(token=settings.metrics_token).init_app(app)  # first: its clock starts before other hooks
    health.init_app(app, settings, store)
    csrf.init_app(app)
    login_manager.init_app(app)
    for blueprint in (oauth.bp, token_management.bp, userinfo.bp, rp_logout.bp, wellknown.bp, auth_pages.bp,
                      health.bp, api_v1.bp, usage.bp, api_keys.bp, signup.bp, dashboard.bp,
                      dashboard_usage.bp, dashboard_authorized_apps.bp, dashboard_api_keys.bp,
                      apps_api.bp, dashboard_apps.bp, openapi.bp):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    audit.init_app(app)
    sign_in_limits.init_app(app, settings)
    client_auth_limits.init_app(app, settings)  # after sign_in_limits: shares its throttle
    prune_schedule.init_app(app, settings)  # each worker prunes expired rows (its first request starts it)
    app.after_request(_security_headers(settings))
    return app


def _configure(app: Flask, settings: Settings) -> None:
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SESSION_COOKIE_NAME="__Host-session" if settings.is_https else "session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_https,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.is_https,
        PREFERRED_URL_SCHEME="https" if settings.is_https else "http",
        # Flask-WTF's default extra check on HTTPS demands a same-origin Referer, which browsers
        # never send under our "Referrer-Policy: no-referrer": every HTTPS form post would fail.
        # The CSRF token, the SameSite=Lax cookie and its __Host- prefix (no cookie tossing from
        # subdomains or plain http, the attack that check guards against) protect the forms.
        WTF_CSRF_SSL_STRICT=False,
    )


def _security_headers(settings: Settings):
    """The headers of every response, each unless the response set its own. Built once; a response
    is looked over once (Headers.setdefault scans it and raises a KeyError per absent name)."""
    defaults = [
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", None),  # per response: a page may widen form-action
        ("Cache-Control", "no-store"),
    ]
    if settings.is_https:
        defaults.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
    defaults = [(name.lower(), name, value) for name, value in defaults]

    def add_headers(response):
        headers = response.headers
        present = {name.lower() for name, _ in headers}
        for key, name, value in defaults:
            if key not in present:
                headers.add(name, csp.content_security_policy() if value is None else value)
        return response

    return add_headers
