"""The sample API service (the `api.techdocs.com` role): a separate process that accepts the
authorization server's access tokens through `authserver.resource` only. It imports none of the
server's code (app, storage, oauth, settings, web) and no SQLAlchemy.

    authserver api serve [--host 127.0.0.1] [--port 5001] [--workers N] [--threads 4]

or, as a WSGI app: `authserver.api.app:create_api_app()`.
"""

from .app import create_api_app
from .config import ApiConfig, ApiConfigError, load_api_config

__all__ = ["ApiConfig", "ApiConfigError", "create_api_app", "load_api_config"]
