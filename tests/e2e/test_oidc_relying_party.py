"""The real server as an independent OpenID Connect relying party library sees it.

IdentityPython's `idpyoidc` (not Authlib, which the server is built on) discovers the provider from its
issuer, builds the authorization request (state, nonce, PKCE S256), parses and checks the callback
(state, RFC 9207 `iss`), redeems the code and validates the ID token itself (signature against the
published JWKS, iss, aud, azp, exp, iat, nonce, at_hash, RS256), fetches userinfo (checking `sub`),
refreshes, introspects, revokes, and logs out (RP-Initiated Logout 1.0). Only the browser (login and
consent forms) is driven by hand, as in test_browser_flow.py. Nothing here works around the provider:
if the library refuses something, the provider is wrong or the library is, and it says which.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from idpyoidc.client.exception import OidcServiceError
from idpyoidc.exception import VerificationError
from idpyoidc.message.oauth2 import is_error_message

from .rp_fixtures import (  # noqa: F401 (fixtures)
    CLIENT_NAME, EMAIL, HTTP_TIMEOUT, NAME, PASSWORD, SCOPES, new_relying_party, rp_deployment, rp_server,
)
from .by_hand import query_of, redirect_location, the_form

pytestmark = pytest.mark.e2e


# Stricter than the library's defaults, never looser: it checks `at_hash` (OIDC Core §3.1.3.6, §3.1.3.8;
# idpyoidc skips it unless asked) and accepts only RS256, the algorithm discovery announces.
STRICT_ID_TOKEN_CHECKS = {"check_hash": True, "allowed_sign_alg": "RS256"}


def verify_again_strictly(rp, token_response) -> None:
    """Run the library's token-response validation once more with the strict checks. (Its refresh
    service validates the new ID token, but without the extra arguments its code exchange takes.)"""
    context = rp.get_context()
    token_response.verify(
        iss=context.issuer, client_id=rp.get_client_id(), keyjar=rp.get_attribute("keyjar"),
        skew=context.clock_skew, **STRICT_ID_TOKEN_CHECKS,
    )


def library_revoke(rp, token: str, hint: str) -> requests.Response:
    """RFC 7009 through the library's revocation service, which builds the request and authenticates
    the client (client_secret_basic). It is sent here because idpyoidc 5.0.0 cannot read any success
    response: its parser raises "Missing or faulty response" on an empty body, and on `{}`, though
    RFC 7009 §2.2 says the client ignores the body and the status code is the answer."""
    request = rp.get_service("token_revocation").get_request_parameters(
        request_args={"token": token, "token_type_hint": hint}, authn_method="client_secret_basic"
    )
    assert request["headers"]["Authorization"].startswith("Basic ")
    return requests.request(request["method"], request["url"], data=request["body"], headers=request["headers"],
                            allow_redirects=False, timeout=HTTP_TIMEOUT)


def sign_in_and_allow(browser: requests.Session, authorize_url: str) -> str:
    """The user's part: sign in with the form (CSRF token), allow on the consent page; returns the
    redirect to the client's callback, captured and not followed."""
    login_url = redirect_location(browser.get(authorize_url, allow_redirects=False, timeout=10))
    assert urlsplit(login_url).path == "/login"
    login_form = the_form(browser.get(login_url, allow_redirects=False, timeout=10))
    signed_in = browser.post(login_form.action, data={**login_form.hidden, "email": EMAIL, "password": PASSWORD},
                             allow_redirects=False, timeout=10)
    back = redirect_location(signed_in)
    assert urlsplit(back).path == "/oauth/authorize"
    consent_page = browser.get(back, allow_redirects=False, timeout=10)
    assert consent_page.status_code == 200, consent_page.text
    assert CLIENT_NAME in consent_page.text
    consent_form = the_form(consent_page)
    allowed = browser.post(consent_form.action, data={**consent_form.hidden, "decision": "allow"},
                           allow_redirects=False, timeout=10)
    return redirect_location(allowed)


def test_independent_relying_party_library_accepts_the_provider(rp_server, rp_deployment):
    server, deployment = rp_server, rp_deployment
    browser = requests.Session()
    try:
        # 1. Discovery from the issuer alone (OpenID Connect Discovery 1.0 §4): the library checks the
        #    document (issuer identical to the one asked, required members, RS256 among the ID token
        #    algorithms) and loads the signing keys from jwks_uri.
        rp = new_relying_party(deployment)
        assert rp.do_provider_info() == deployment.issuer
        provider = rp.get_context().provider_info
        assert provider["authorization_response_iss_parameter_supported"] is True
        assert "S256" in provider["code_challenge_methods_supported"]
        for endpoint in ("revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
            assert provider.get(endpoint, "").startswith(deployment.issuer + "/"), f"discovery lacks {endpoint}"
        keyjar = rp.get_attribute("keyjar")
        assert deployment.kid in [key.kid for key in keyjar.get_issuer_keys(deployment.issuer)]
        rp.do_client_registration()  # static registration: nothing is sent
        rp.get_context().claims.set_usage("verify_args", STRICT_ID_TOKEN_CHECKS)

        # 2. The authorization request, built by the library: state, nonce, PKCE S256.
        authorize_url = rp.init_authorization()
        request = query_of(authorize_url)
        assert authorize_url.startswith(provider["authorization_endpoint"] + "?")
        assert request["client_id"] == deployment.client_id and request["response_type"] == "code"
        assert request["redirect_uri"] == deployment.redirect_uri
        assert request["scope"].split() == SCOPES
        assert request["code_challenge_method"] == "S256" and request["code_challenge"]
        assert request["state"] and request["nonce"]
        assert request["prompt"] == "consent"  # OIDC Core §11: the library asks it with offline_access
        state = request["state"]

        # 3. The browser signs in and allows; the redirect to the callback is captured, not followed.
        callback = sign_in_and_allow(browser, authorize_url)
        assert callback.split("?")[0] == deployment.redirect_uri
        response = query_of(callback)
        assert set(response) == {"code", "state", "iss"}

        # 4. The library parses the callback and checks it: a response naming another issuer
        #    (RFC 9207 §2.4) or carrying a state it never issued is refused ...
        with pytest.raises(VerificationError, match="Issuer mismatch"):
            rp.finalize_auth({**response, "iss": "http://127.0.0.1:1"})
        with pytest.raises(KeyError):
            rp.finalize_auth({**response, "state": "not-a-state-this-client-issued"})
        # ... and ours is accepted.
        authorization = rp.finalize_auth(response)
        assert not is_error_message(authorization)
        assert (authorization["state"], authorization["iss"]) == (state, deployment.issuer)

        # 5. The library redeems the code with its PKCE verifier and validates the ID token itself:
        #    signature by the JWKS key named in `kid`, iss, aud, azp, exp, iat, the nonce bound to this
        #    state, at_hash against the access token, RS256 only.
        tokens = rp.get_tokens(state)
        assert not is_error_message(tokens), tokens.to_dict()
        id_token = tokens["__verified_id_token"]
        assert id_token.jws_header["kid"] == deployment.kid and id_token.jws_header["alg"] == "RS256"
        assert id_token["iss"] == deployment.issuer
        assert id_token["aud"] == [deployment.client_id]
        assert id_token["sub"] == deployment.user_id
        assert id_token["nonce"] == request["nonce"]
        assert id_token["at_hash"]
        assert isinstance(id_token["auth_time"], int) and id_token["auth_time"] <= id_token["iat"]
        assert (id_token["name"], id_token["email"]) == (NAME, EMAIL)
        assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
        access_token, refresh_token = tokens["access_token"], tokens["refresh_token"]

        # 6. Userinfo through the library, which checks its `sub` against the ID token's.
        userinfo = rp.get_user_info(state)
        assert userinfo["sub"] == deployment.user_id
        assert (userinfo["name"], userinfo["email"], userinfo["email_verified"]) == (NAME, EMAIL, False)

        # 7. Refresh through the library: a rotated refresh token and a new ID token for the same
        #    authentication (OIDC Core §12.2), validated by the library.
        refreshed = rp.refresh_access_token(state)
        assert not is_error_message(refreshed), refreshed.to_dict()
        verify_again_strictly(rp, refreshed)
        new_id_token = refreshed["__verified_id_token"]
        assert new_id_token["sub"] == id_token["sub"]
        assert new_id_token["auth_time"] == id_token["auth_time"]
        assert new_id_token["aud"] == [deployment.client_id]
        assert refreshed["refresh_token"] != refresh_token and refreshed["access_token"] != access_token
        access_token, refresh_token = refreshed["access_token"], refreshed["refresh_token"]
        # The library keeps the rotated token for the next refresh.
        assert rp.get_context().cstate.get_set(state, claim=["refresh_token"])["refresh_token"] == refresh_token

        # 8. Introspection (RFC 7662) through the library, as this client.
        introspected = rp.do_request("introspection", request_args={"token": access_token})
        assert introspected["active"] is True
        assert introspected["sub"] == deployment.user_id and introspected["client_id"] == deployment.client_id
        assert introspected["scope"] == SCOPES  # sent space-separated (RFC 7662 §2.2), read into a list

        # 9. Revoking the access token (RFC 7009): introspection now says inactive, userinfo refuses it.
        revoked = library_revoke(rp, access_token, "access_token")
        assert revoked.status_code == 200, revoked.text
        assert rp.do_request("introspection", request_args={"token": access_token}).to_dict() == {"active": False}
        with pytest.raises(OidcServiceError, match="invalid_token"):
            rp.get_user_info(state, access_token=access_token)

        # 10. Revoking the refresh token ends the grant: the library's next refresh gets invalid_grant.
        revoked = library_revoke(rp, refresh_token, "refresh_token")
        assert revoked.status_code == 200, revoked.text
        with pytest.raises(OidcServiceError, match="invalid_grant"):
            rp.refresh_access_token(state)

        # 11. RP-Initiated Logout 1.0 through the library: its end-session request carries the latest
        #     ID token it holds as id_token_hint, the registered post_logout_redirect_uri and a state;
        #     the server ends the browser session and sends the browser back with that state.
        logout = rp.logout(state, post_logout_redirect_uri=deployment.post_logout_redirect_uri)
        logout_request = query_of(logout["url"])
        assert logout["url"].startswith(provider["end_session_endpoint"] + "?")
        assert logout_request["id_token_hint"] == refreshed["id_token"]
        signed_out = browser.get(logout["url"], allow_redirects=False, timeout=10)
        back = redirect_location(signed_out)
        assert back.split("?")[0] == deployment.post_logout_redirect_uri
        assert query_of(back) == {"state": logout_request["state"]}

        # 12. The browser session is gone: a silent authorization request (prompt=none), built by the
        #     library, comes back with login_required, which the library parses as an error response.
        silent_url = rp.init_authorization(req_args={"scope": "openid", "prompt": "none"})
        silent = redirect_location(browser.get(silent_url, allow_redirects=False, timeout=10))
        assert silent.split("?")[0] == deployment.redirect_uri
        silent_response = rp.finalize_auth(query_of(silent))
        assert is_error_message(silent_response)
        assert silent_response["error"] == "login_required"
        assert silent_response["state"] == query_of(silent_url)["state"]
    finally:
        browser.close()

    # 13. Nothing above made the server log an unhandled error.
    assert "Traceback" not in server.stderr(), server.stderr()
