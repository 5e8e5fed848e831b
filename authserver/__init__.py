"""authserver: a standalone OAuth 2.0 / OpenID Connect authorization server.

Only the version lives here, so that importing a subpackage (such as the resource-side
verifier) never pulls in Flask app code or SQLAlchemy.
"""

__version__ = "0.1.0"
