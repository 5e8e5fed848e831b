"""Flask extensions and accessors for what `create_app` builds once per app."""

from flask import current_app
from flask_login import LoginManager
from flask_wtf import CSRFProtect

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = None

SETTINGS_KEY = "authserver.settings"
SERVER_KEY = "authserver.oauth_server"


def current_settings():
    return current_app.extensions[SETTINGS_KEY]


def current_server():
    return current_app.extensions[SERVER_KEY]
