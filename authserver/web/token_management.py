"""`POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662): called by clients and
resource services, which authenticate themselves, so CSRF-exempt like the token endpoint. Bodies
are form-encoded or JSON and parsed exactly as at the token endpoint."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, request

from ..extensions import csrf, current_server
from ..oauth.introspection import IntrospectionEndpoint
from ..oauth.requests import OAuthRequest, token_params
from ..oauth.revocation import RevocationEndpoint

bp = Blueprint("token_management", __name__, url_prefix="/oauth")


@bp.post("/revoke")
@csrf.exempt
def revoke():
    return _endpoint_response(RevocationEndpoint.ENDPOINT_NAME)


@bp.post("/introspect")
@csrf.exempt
def introspect():
    return _endpoint_response(IntrospectionEndpoint.ENDPOINT_NAME)


def _endpoint_response(name: str):
    server = current_server()
    try:
        oauth_request = OAuthRequest(request, token_params(request))
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    return server.create_endpoint_response(name, oauth_request)
